"""The texts of thread lines and team notices the desk writes (pure, mrkdwn, customer parts escaped).

Lines may be long (a whole escalation reason, a whole template): ``bridge.state.say`` splits them over
several messages with :func:`bridge.slack.blocks.notice_parts`. What goes where it cannot be split (a
team's channel notice is one message) is cut visibly and points at the thread.
"""

from __future__ import annotations

from bridge.slack.blocks import NAME_CHARS
from bridge.text import clip, clip_escaped, slack_escape

TEAM_CHARS = 100
TEAM_REASON_CHARS = 500  # the reason in a team's channel notice; the whole one is in the thread
KNOWN_TEAMS_CHARS = 1000


def escalation_line(mention: str, team: str, priority: str, by: str, reason: str) -> str:
    """The thread's line: the whole reason."""
    why = f": {slack_escape(reason)}" if reason else ""
    return f"{mention} escalated to *{clip_escaped(team, TEAM_CHARS)}* (priority {priority}) by {by}{why}"


def team_notice(
    mention: str,
    link: str,
    number: int,
    platform_label: str,
    customer_name: str,
    team: str,
    priority: str,
    by: str,
    reason: str,
) -> str:
    """The notice in the team's channel: one message, the reason cut to a glance (the thread has it all)."""
    short = f": {clip_escaped(reason, TEAM_REASON_CHARS)}" if reason else ""
    return (
        f"{mention} <{link}|#{number}> ({platform_label}, {clip_escaped(customer_name, NAME_CHARS)}) was "
        f"escalated to *{clip_escaped(team, TEAM_CHARS)}* (priority {priority}) by {by}{short}"
    )


def template_post(user: str, name: str, text: str) -> str:
    """The thread's record of a template sent: the whole text, quoted."""
    shown = "\n".join("> " + line for line in slack_escape(text).splitlines()) or ">"
    return f"<@{user}> sent the template *{slack_escape(name)}*:\n{shown}"


def unknown_team(name: str, known: list[str]) -> str:
    listed = (
        clip(", ".join(slack_escape(k) for k in known), KNOWN_TEAMS_CHARS) or "none are configured in dmbridge.toml"
    )
    return f"There is no team `{clip_escaped(name, TEAM_CHARS)}`. Teams: {listed}."
