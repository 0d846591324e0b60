"""Slack side: Web API calls, pure Block Kit builders, and the listener families."""
