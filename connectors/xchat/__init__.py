"""X Chat: X's encrypted DMs, through the Chat API (``xdk``) and X's crypto SDK (``chatxdk``)."""
