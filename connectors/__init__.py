"""Platform connectors: pure edges that turn platform payloads into domain types and back."""
