"""The ``/dm`` slash command (channel-level; Slack does not allow slash commands in threads)."""

from __future__ import annotations

from slack_bolt import Ack, App

DM_HELP = (
    "*dmbridge* mirrors customer DMs into this channel, one thread per conversation.\n"
    "• Reply in a conversation's thread to answer the customer.\n"
    "• Start a thread message with `//` or `note:` to keep it internal.\n"
    "• Mention the bot in a thread for commands (`@dmbridge help`)."
)


def register(app: App) -> None:
    @app.command("/dm")
    def dm_command(ack: Ack) -> None:
        ack(text=DM_HELP)
