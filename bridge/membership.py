"""When Slack refuses a post because the bot is not in the channel: tell the team once, where they will see it.

``dmbridge doctor`` checks membership beforehand; this covers a channel that
changed since (the bot removed, a team channel made private). An escalation
notice refused in the team's channel is explained in the conversation's
thread; a card or message refused in a routed channel is explained at the top
of ``DMBRIDGE_CHANNEL``. Each once (the outbox key), so a backlog of refused
rows does not flood anyone.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from bridge import state
from bridge.config import Settings
from bridge.deliveries import ChannelNotice, Delivery
from bridge.store import outbox
from bridge.store.tables import Conversation

REFUSALS = ("not_in_channel", "channel_not_found")


def _text(channel: str) -> str:
    return (
        f":warning: dmbridge could not post in <#{channel}>: it is not a member. Invite it there "
        f"(`/invite @dmbridge` in <#{channel}>; a private channel needs the invitation), then run "
        "`dmbridge doctor` to check every channel."
    )


def refused_channel(delivery: Delivery, conv: Conversation | None, reason: str) -> str | None:
    """The channel a refused post was meant for, when Slack refused it for want of membership."""
    if not any(reason.endswith(f": {code}") for code in REFUSALS):
        return None
    if isinstance(delivery, ChannelNotice):
        return delivery.channel or None
    return conv.channel if conv is not None else None


def hint(
    settings: Settings, delivery: Delivery, conv: Conversation | None, reason: str, now: float
) -> Callable[[Session], None] | None:
    """What to write so the team learns, once, that the bot must be invited to the channel; None if nowhere."""
    channel = refused_channel(delivery, conv, reason)
    if channel is None:
        return None
    if conv is not None and conv.id is not None and conv.thread_ts and conv.channel != channel:
        conv_id = conv.id

        def in_thread(s: Session) -> None:
            fresh = s.get(Conversation, conv_id)
            if fresh is not None:
                state.say(s, fresh, ("not_in_channel", channel, conv_id), _text(channel), now)

        return in_thread
    inbox = settings.dmbridge_channel
    if not inbox or inbox == channel:
        return None  # the inbox itself refused: nowhere in Slack to say it (the log and doctor say it)

    def at_top(s: Session) -> None:
        outbox.enqueue(s, ChannelNotice.not_in_channel(channel, inbox, _text(channel)), now)

    return at_top
