"""Facebook Messenger and Instagram direct messages through Meta's Graph API (Send API, webhooks)."""
