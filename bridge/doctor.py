"""``dmbridge doctor``: checks a deployment against the real Slack, X and Meta, and its database.

Each check is a small function doing its own I/O and returning :class:`Check`
rows (✅ or ❌ with the fix); :func:`run` runs the ones the settings call for.
Nothing here changes anything on the platforms: only reads (``auth.test``,
``conversations.info``, ``usergroups.users.list``, ``GET /2/users/me``,
``GET /2/webhooks``, ``GET /me``, ``GET /{page-id}/subscribed_apps``); the one
write it may cause is the bridge's own: stored X OAuth 2.0 tokens due for
refresh are refreshed, as ``serve`` would.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bridge import manifest
from bridge.config import Settings
from bridge.slack.api import make_client
from bridge.toml_config import FileConfig

INVITE = "/invite @dmbridge"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def manifest_scopes() -> set[str]:
    """The bot scopes of the manifest dmbridge ships (what `dmbridge manifest` prints)."""
    return set(manifest.load()["oauth_config"]["scopes"]["bot"])


def _slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict):
        return str(exc.response.data.get("error") or exc.response.status_code)
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------- Slack


def slack_token(client: WebClient) -> tuple[Check, set[str] | None]:
    """``auth.test``: the token works; also the granted scopes (the ``x-oauth-scopes`` header), if reported."""
    name = "Slack bot token"
    if not client.token:
        return Check(
            name,
            False,
            "SLACK_BOT_TOKEN is not set",
            "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…) from OAuth & Permissions",
        ), None
    try:
        resp = client.auth_test()
    except (SlackApiError, SlackClientError, OSError) as exc:
        return Check(
            name,
            False,
            f"auth.test failed: {_slack_error(exc)}",
            "set SLACK_BOT_TOKEN to the current Bot User OAuth Token (OAuth & Permissions; "
            "reinstalling the app issues a new one)",
        ), None
    header = next((v for k, v in resp.headers.items() if k.lower() == "x-oauth-scopes"), None)
    scopes = None if header is None else {s.strip() for s in str(header).split(",") if s.strip()}
    return Check(name, True, f"works for {resp.get('user')} in {resp.get('team')}"), scopes


def slack_scopes(granted: set[str] | None, needed: set[str]) -> Check:
    name = "Slack scopes"
    reinstall = (
        "paste the output of `dmbridge manifest` into the app's manifest (App Manifest), "
        "then OAuth & Permissions → Reinstall to Workspace"
    )
    if granted is None:
        return Check(name, False, "auth.test did not report the granted scopes (no x-oauth-scopes header)", reinstall)
    missing = sorted(needed - granted)
    if missing:
        return Check(name, False, "missing " + ", ".join(missing), reinstall)
    return Check(name, True, f"all {len(needed)} manifest scopes granted")


def channels_to_check(settings: Settings, file: FileConfig) -> dict[str, str]:
    """Channel id → its role. The inbox and routed channels carry threads (the bot needs their events, so it
    must be a member); team channels only receive escalation notices."""
    roles: dict[str, str] = {}
    if settings.dmbridge_channel:
        roles[settings.dmbridge_channel] = "DMBRIDGE_CHANNEL"
    for route in file.routes:
        roles.setdefault(
            route.channel, f"routed channel ({route.connector}{':' + route.account if route.account else ''})"
        )
    for team_name, team in file.teams.items():
        if team.channel:
            roles.setdefault(team.channel, f"escalation channel of team {team_name}")
    return roles


def slack_channel(client: WebClient, channel: str, role: str, granted: set[str] | None) -> Check:
    name = f"Slack channel {channel}"
    try:
        info = client.conversations_info(channel=channel)
    except (SlackApiError, SlackClientError, OSError) as exc:
        error = _slack_error(exc)
        fix = (
            (
                f"check the channel id; a private channel is invisible to the bot until it is invited "
                f"(`{INVITE}` in that channel)"
            )
            if error == "channel_not_found"
            else "see the error; the bot needs channels:read and groups:read"
        )
        return Check(name, False, f"{role}: conversations.info failed: {error}", fix)
    data = info.get("channel") or {}
    label = f"#{data.get('name', channel)}"
    if data.get("is_archived"):
        return Check(name, False, f"{role} {label} is archived", "unarchive it or point dmbridge elsewhere")
    if data.get("is_member"):
        return Check(name, True, f"{role} {label}: the bot is a member")
    threads = not role.startswith("escalation")
    if data.get("is_private"):
        return Check(
            name,
            False,
            f"{role} {label} is private and the bot is not in it",
            f"invite the bot: `{INVITE}` in {label} (private channels need an invitation)",
        )
    if threads:
        return Check(
            name,
            False,
            f"{role} {label}: the bot is not a member, so it gets no events there (agent replies would be lost)",
            f"`{INVITE}` in {label}",
        )
    if granted is not None and "chat:write.public" in granted:
        return Check(name, True, f"{role} {label}: public; the bot posts there with chat:write.public")
    return Check(
        name,
        False,
        f"{role} {label}: the bot is not a member and has no chat:write.public",
        f"`{INVITE}` in {label}, or grant chat:write.public (reinstall from `dmbridge manifest`)",
    )


def groups_to_check(settings: Settings, file: FileConfig) -> dict[str, str]:
    roles: dict[str, str] = {}
    agents = settings.dmbridge_agents or file.agents
    if agents:
        roles[agents] = "agents"
    if file.assignment.usergroup:
        roles.setdefault(file.assignment.usergroup, "round-robin assignment")
    for team_name, team in file.teams.items():
        if team.usergroup:
            roles.setdefault(team.usergroup, f"team {team_name}")
    return roles


def slack_group(client: WebClient, group: str, role: str) -> Check:
    name = f"Slack user group {group}"
    try:
        users = client.usergroups_users_list(usergroup=group).get("users") or []
    except (SlackApiError, SlackClientError, OSError) as exc:
        error = _slack_error(exc)
        fix = (
            "check the id in dmbridge.toml / DMBRIDGE_AGENTS (S…, from the group's profile → Copy group ID)"
            if error in ("no_such_subteam", "invalid_usergroup")
            else "grant usergroups:read (reinstall from `dmbridge manifest`)"
            if error == "missing_scope"
            else "see the error"
        )
        return Check(name, False, f"{role}: usergroups.users.list failed: {error}", fix)
    if not users:
        return Check(name, False, f"{role}: the group has no members", "add people to the group in Slack")
    return Check(name, True, f"{role}: {len(users)} member(s)")


def slack_mode(settings: Settings) -> Check:
    if settings.slack_app_token:
        if not settings.slack_app_token.startswith("xapp-"):
            return Check(
                "Slack Socket Mode",
                False,
                "SLACK_APP_TOKEN is not an app-level token (xapp-…)",
                "Basic Information → App-Level Tokens, scope connections:write",
            )
        return Check("Slack Socket Mode", True, "SLACK_APP_TOKEN is set (xapp-…)")
    if settings.slack_signing_secret:
        return Check("Slack signing secret", True, "SLACK_SIGNING_SECRET is set (HTTP mode)")
    return Check(
        "Slack signing secret",
        False,
        "neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode) is set",
        "set SLACK_SIGNING_SECRET from Basic Information → Signing Secret, or SLACK_APP_TOKEN for Socket Mode",
    )


def slack_checks(settings: Settings, file: FileConfig, client: WebClient | None = None) -> list[Check]:
    client = client or make_client(settings.slack_bot_token, settings.slack_base_url, settings.dmbridge_http_timeout)
    first, granted = slack_token(client)
    results = [first, slack_mode(settings)]
    if not first.ok:
        return results
    results.append(slack_scopes(granted, manifest_scopes()))
    if not settings.dmbridge_channel:
        results.append(
            Check(
                "Slack channel",
                False,
                "DMBRIDGE_CHANNEL is not set",
                "set DMBRIDGE_CHANNEL to the inbox channel id (channel details → About, C…)",
            )
        )
    results += [slack_channel(client, c, role, granted) for c, role in channels_to_check(settings, file).items()]
    results += [slack_group(client, g, role) for g, role in groups_to_check(settings, file).items()]
    return results


# ---------------------------------------------------------------------------------------------- database


def database(settings: Settings) -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from bridge.store.db import Database
    from bridge.store.migrate import alembic_config

    name = "Database"
    try:
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            return Check(
                name,
                False,
                f"no SQLite file at {url.database}",
                "check DATABASE_URL, or run `dmbridge migrate` to create it",
            )
        db = Database(settings.database_url)
    except Exception as exc:  # a bad URL or a missing driver
        return Check(name, False, f"cannot open DATABASE_URL: {type(exc).__name__}", "check DATABASE_URL")
    where = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as exc:
        return Check(
            name,
            False,
            f"{where} unreachable: {type(exc).__name__}",
            "check DATABASE_URL and that the database server is up",
        )
    finally:
        db.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())
    if current != heads:
        shown = ", ".join(sorted(current)) or "no schema"
        return Check(
            name,
            False,
            f"{where} is at {shown}, the code needs {', '.join(sorted(heads))}",
            "run `dmbridge migrate` (serve also migrates on start)",
        )
    return Check(name, True, f"{where} reachable, schema at {', '.join(sorted(heads))} (head)")


def auto_reply_templates(settings: Settings, file: FileConfig) -> Check | None:
    """Every template ``[[auto_replies]]`` names is saved (else that reply is skipped, with a warning in the
    thread, each time it would have gone out). Asked only of a database the check above found current."""
    from bridge.store.db import Database
    from bridge.store.desk import all_templates

    names = sorted({rule.template for rule in file.auto_replies})
    if not names:
        return None
    db = Database(settings.database_url)
    try:
        with db.read() as s:
            saved = {t.name for t in all_templates(s)}
    finally:
        db.dispose()
    missing = [name for name in names if name not in saved]
    name = "Automatic replies"
    if missing:
        return Check(
            name,
            False,
            f"[[auto_replies]] names templates that are not saved: {', '.join(missing)}",
            "save each in the inbox channel with `/dm template add NAME text…`, or fix the name in dmbridge.toml",
        )
    return Check(name, True, f"templates saved: {', '.join(names)}")


# ---------------------------------------------------------------------------------------------- all


def run(
    settings: Settings,
    file: FileConfig,
    *,
    environ: Mapping[str, str] | None = None,
    public_url: str | None = None,
    slack: WebClient | None = None,
    x_token_status: Callable[[Settings], Check | None] | None = None,
) -> list[Check]:
    """Every check the settings call for, in the order they are printed."""
    from bridge import doctor_platforms as platforms

    env = os.environ if environ is None else environ
    results = slack_checks(settings, file, slack)
    if settings.x_enabled:
        results += platforms.x_checks(settings, public_url, x_token_status or platforms.x_oauth2_freshness)
    if settings.meta_enabled:
        results += platforms.meta_checks(settings, file, env)
    db_check = database(settings)
    results.append(db_check)
    replies = auto_reply_templates(settings, file) if db_check.ok else None
    return results if replies is None else [*results, replies]


def printable(text: str) -> str:
    """Text from a platform (a Page or team name, an error) made safe for a terminal: control characters
    (escape sequences, carriage returns, newlines) shown as ``\\xNN`` instead of acting."""
    return "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}" for ch in text
    )


def table(results: list[Check]) -> str:
    """The checks as a plain-text table: one line each, the fix indented under a failed one."""
    width = max((len(printable(c.name)) for c in results), default=0)
    lines = []
    for c in results:
        lines.append(f"{'✅' if c.ok else '❌'} {printable(c.name).ljust(width)}  {printable(c.detail)}")
        if not c.ok and c.fix:
            lines.append(f"   {' ' * width}  → {printable(c.fix)}")
    failed = sum(not c.ok for c in results)
    lines.append(f"\n{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def summary_ok(results: list[Check]) -> bool:
    return all(c.ok for c in results)
