"""dmbridge: a Slack-native desk for social-media direct messages."""

__version__ = "0.1.0"
__all__ = ["__version__"]
