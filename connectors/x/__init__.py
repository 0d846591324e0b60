"""X (Twitter) direct messages through the v2 API, with tweepy."""
