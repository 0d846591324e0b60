"""`dmbridge doctor` against the emulators: every ❌ it can report, and an all-✅ run that exits 0."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from typer.testing import CliRunner

from bridge import doctor
from bridge.cli import app
from bridge.config import Settings
from bridge.sandbox.harness import (
    AGENTS_GROUP,
    BILLING_GROUP,
    BOT_TOKEN,
    CHANNEL,
    IG_ACCOUNT,
    PAGE_ID,
    PAGE_TOKEN,
    SIGNING_SECRET,
    TEAM_CHANNEL,
    sandbox_settings,
    start_meta,
)
from bridge.sandbox.meta import MetaEmulator
from bridge.sandbox.slack import BOT_USER, SlackEmulator
from bridge.sandbox.x import XEmulator
from bridge.store import migrate
from bridge.store.db import Database
from bridge.toml_config import FileConfig, MetaFile, MetaPage
from tests.scenarios.helpers import BoxFactory

PRIVATE_ROUTE = "C0PRIVATE"
TOML = f"""
agents = "{AGENTS_GROUP}"
[teams.billing]
usergroup = "{BILLING_GROUP}"
channel = "{TEAM_CHANNEL}"
[[routes]]
connector = "meta"
channel = "{PRIVATE_ROUTE}"
"""
PUBLIC = "https://dm.example.com"


@dataclass
class World:
    slack: SlackEmulator
    x: XEmulator
    meta: MetaEmulator
    settings: Settings
    file: FileConfig
    toml: Path

    def run(self, **overrides: object) -> dict[str, doctor.Check]:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return {c.name: c for c in doctor.run(settings, self.file, environ={}, public_url=PUBLIC)}

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            "SLACK_BOT_TOKEN": s.slack_bot_token,
            "SLACK_SIGNING_SECRET": s.slack_signing_secret,
            "SLACK_APP_TOKEN": "",
            "SLACK_API_URL": s.slack_api_url,
            "DMBRIDGE_CHANNEL": s.dmbridge_channel,
            "DATABASE_URL": s.database_url,
            "X_CONSUMER_KEY": s.x_consumer_key,
            "X_CONSUMER_SECRET": s.x_consumer_secret,
            "X_ACCESS_TOKEN": s.x_access_token,
            "X_ACCESS_TOKEN_SECRET": s.x_access_token_secret,
            "X_USER_BEARER_TOKEN": "",
            "X_API_URL": s.x_api_url,
            "X_WEBHOOKS": "true",
            "META_APP_SECRET": s.meta_app_secret,
            "META_VERIFY_TOKEN": s.meta_verify_token,
            "META_PAGE_ACCESS_TOKEN": s.meta_page_access_token,
            "META_GRAPH_URL": s.meta_graph_url,
            "DMBRIDGE_AGENTS": "",
        }


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A deployment doctor passes: every channel joined, groups filled, webhooks registered and subscribed."""
    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.start()
    slack.add_channel(CHANNEL, "social-inbox", members=[BOT_USER])
    slack.add_channel(TEAM_CHANNEL, "billing-escalations", members=["U0AGENT2"])  # public: chat:write.public
    slack.add_channel(PRIVATE_ROUTE, "vip-inbox", members=[BOT_USER], is_private=True)
    slack.add_usergroup(AGENTS_GROUP, ["U0AGENT1", "U0AGENT2"])
    slack.add_usergroup(BILLING_GROUP, ["U0AGENT2"])
    x = XEmulator()
    x.start()
    x.app_only.register(f"{PUBLIC}/webhooks/x")
    meta = start_meta()
    meta.subscribe(PAGE_ID, ["messages", "message_echoes", "messaging_postbacks"])
    url = f"sqlite:///{tmp_path / 'dmbridge.db'}"
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    toml = tmp_path / "dmbridge.toml"
    toml.write_text(TOML, encoding="utf-8")
    settings = sandbox_settings(slack, x, url, meta, x_webhooks=True)
    try:
        yield World(slack, x, meta, settings, FileConfig.load(toml), toml)
    finally:
        for emulator in (slack, x, meta):
            emulator.stop()


def failed(results: dict[str, doctor.Check]) -> dict[str, doctor.Check]:
    return {name: c for name, c in results.items() if not c.ok}


def test_all_green_exits_zero(world: World) -> None:
    results = world.run()
    assert not failed(results), doctor.table(list(results.values()))
    assert {
        "Slack bot token",
        "Slack scopes",
        f"Slack channel {CHANNEL}",
        f"Slack channel {PRIVATE_ROUTE}",
        f"Slack channel {TEAM_CHANNEL}",
        f"Slack user group {AGENTS_GROUP}",
        f"Slack user group {BILLING_GROUP}",
        "Slack signing secret",
        "X credentials",
        "X webhook",
        "Meta Graph version",
        "Meta token META_PAGE_ACCESS_TOKEN",
        f"Meta Page {PAGE_ID} webhooks",
        "Database",
    } <= set(results)
    assert "chat:write.public" in results[f"Slack channel {TEAM_CHANNEL}"].detail
    out = CliRunner().invoke(app, ["doctor", "--config", str(world.toml), "--url", PUBLIC], env=world.env())
    assert out.exit_code == 0, out.output
    assert "✅ Slack bot token" in out.output and "❌" not in out.output


def test_bad_slack_token(world: World) -> None:
    world.slack.token_valid = False
    bad = failed(world.run())
    assert set(bad) == {"Slack bot token"}
    assert "token_revoked" in bad["Slack bot token"].detail and "SLACK_BOT_TOKEN" in bad["Slack bot token"].fix
    out = CliRunner().invoke(app, ["doctor", "--config", str(world.toml), "--url", PUBLIC], env=world.env())
    assert out.exit_code == 1 and "❌ Slack bot token" in out.output and "→ set SLACK_BOT_TOKEN" in out.output


def test_missing_scope(world: World) -> None:
    world.slack.scopes = [s for s in world.slack.scopes if s not in ("usergroups:read", "chat:write.public")]
    bad = failed(world.run())
    assert bad["Slack scopes"].detail == "missing chat:write.public, usergroups:read"
    assert "Reinstall" in bad["Slack scopes"].fix
    # without chat:write.public the public escalation channel the bot is not in fails too
    assert "/invite @dmbridge" in bad[f"Slack channel {TEAM_CHANNEL}"].fix


def test_bot_not_in_private_routed_channel(world: World) -> None:
    world.slack.channels[PRIVATE_ROUTE].members.remove(BOT_USER)
    bad = failed(world.run())
    assert set(bad) == {f"Slack channel {PRIVATE_ROUTE}"}
    check = bad[f"Slack channel {PRIVATE_ROUTE}"]
    assert "private" in check.detail and "`/invite @dmbridge` in #vip-inbox" in check.fix


def test_bot_not_in_public_inbox_channel(world: World) -> None:
    """chat:write.public lets it post, but events only come from channels it is in: agent replies would be lost."""
    world.slack.channels[CHANNEL].members.remove(BOT_USER)
    bad = failed(world.run())
    assert set(bad) == {f"Slack channel {CHANNEL}"}
    assert "gets no events" in bad[f"Slack channel {CHANNEL}"].detail


def test_unknown_channel(world: World) -> None:
    bad = failed(world.run(dmbridge_channel="C0NOSUCH"))
    assert "channel_not_found" in bad["Slack channel C0NOSUCH"].detail
    assert "invited" in bad["Slack channel C0NOSUCH"].fix


def test_unreadable_user_group(world: World) -> None:
    del world.slack.usergroups[BILLING_GROUP]
    bad = failed(world.run())
    assert set(bad) == {f"Slack user group {BILLING_GROUP}"}
    assert "no_such_subteam" in bad[f"Slack user group {BILLING_GROUP}"].detail


def test_missing_signing_secret(world: World) -> None:
    bad = failed(world.run(slack_signing_secret=""))
    assert set(bad) == {"Slack signing secret"}
    assert "SLACK_SIGNING_SECRET" in bad["Slack signing secret"].fix
    socket = world.run(slack_signing_secret="", slack_app_token="xoxb-not-an-app-token")
    assert not socket["Slack Socket Mode"].ok
    assert world.run(slack_signing_secret="", slack_app_token="xapp-1-A0-1-abc")["Slack Socket Mode"].ok


def test_bad_x_credential(world: World) -> None:
    bad = failed(world.run(x_access_token_secret="wrong"))
    assert set(bad) == {"X credentials"}
    assert "X_ACCESS_TOKEN" in bad["X credentials"].fix


def test_static_oauth2_token_cannot_be_refreshed(world: World) -> None:
    results = world.run(
        x_consumer_key="",
        x_consumer_secret="",
        x_access_token="",
        x_access_token_secret="",
        x_user_bearer_token=world.x.user_bearer_token,
        x_webhooks=False,
    )
    assert results["X credentials"].ok and "OAuth 2.0" in results["X credentials"].detail
    assert set(failed(results)) == {"X OAuth 2.0 token"}


def test_webhook_not_registered(world: World) -> None:
    world.x.app_only.webhooks.clear()
    bad = failed(world.run())
    assert set(bad) == {"X webhook"}
    assert f"{PUBLIC}/webhooks/x" in bad["X webhook"].fix and "POST /2/webhooks" in bad["X webhook"].fix
    world.x.app_only.register(f"{PUBLIC}/webhooks/x", valid=False)
    assert "invalid" in failed(world.run())["X webhook"].detail


def test_bad_meta_token(world: World) -> None:
    world.meta.revoke(world.settings.meta_page_access_token)
    bad = failed(world.run())
    assert set(bad) == {"Meta token META_PAGE_ACCESS_TOKEN"}
    assert "pages_manage_metadata" in bad["Meta token META_PAGE_ACCESS_TOKEN"].fix


def test_page_missing_a_subscribed_field(world: World) -> None:
    world.meta.subscribe(PAGE_ID, ["messages"])
    bad = failed(world.run())
    assert set(bad) == {f"Meta Page {PAGE_ID} webhooks"}
    check = bad[f"Meta Page {PAGE_ID} webhooks"]
    assert check.detail == "not subscribed to message_echoes"
    assert "subscribed_fields=messages,message_echoes" in check.fix and "pages_manage_metadata" in check.fix
    world.meta.subscriptions.clear()
    assert "not subscribed to the Page" in failed(world.run())[f"Meta Page {PAGE_ID} webhooks"].detail


def test_expiring_graph_version(world: World) -> None:
    bad = failed(world.run(meta_graph_url=world.meta.http.url + "/v21.0"))  # the emulator serves any version
    assert set(bad) == {"Meta Graph version"}
    assert "2027-01-21" in bad["Meta Graph version"].detail


def test_database_not_migrated(world: World, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.engine.begin() as connection:  # a database last migrated by an older release
        cfg = migrate.alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0003")
    db.dispose()
    bad = failed(world.run(database_url=url))
    assert set(bad) == {"Database"}
    assert "is at 0003" in bad["Database"].detail and "dmbridge migrate" in bad["Database"].fix
    sqlite3.connect(tmp_path / "empty.db").close()
    assert "no schema" in failed(world.run(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))["Database"].detail
    missing = failed(world.run(database_url=f"sqlite:///{tmp_path / 'nowhere.db'}"))["Database"]
    assert "no SQLite file" in missing.detail and not (tmp_path / "nowhere.db").exists()


def test_database_unreachable(world: World) -> None:
    bad = failed(world.run(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    assert set(bad) == {"Database"} and "unreachable" in bad["Database"].detail


def test_refreshing_oauth2_tokens_are_checked_through_the_token_store(tmp_path: Path, make_box: BoxFactory) -> None:
    box = make_box(x_oauth2=True)  # authorized with `dmbridge x-auth`'s flow; tokens in the database
    results = {c.name: c for c in doctor.run(box.settings, box.file, environ={})}
    assert results["X credentials"].ok and "OAuth 2.0 (refreshed)" in results["X credentials"].detail
    assert results["X OAuth 2.0 token"].ok and "refreshed automatically" in results["X OAuth 2.0 token"].detail
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    bad = failed(
        {c.name: c for c in doctor.run(box.settings.model_copy(update={"database_url": url}), box.file, environ={})}
    )
    assert "x-auth" in bad["X credentials"].fix and "x-auth" in bad["X OAuth 2.0 token"].fix


def test_each_page_token_named_in_the_toml_is_checked(world: World) -> None:
    file = world.file.model_copy(update={"meta": MetaFile(pages=[MetaPage(id=IG_ACCOUNT, token_env="META_TOKEN_IG")])})
    unset = {c.name: c for c in doctor.run(world.settings, file, environ={}, public_url=PUBLIC)}
    assert set(failed(unset)) == {"Meta token META_TOKEN_IG"}
    assert unset["Meta token META_TOKEN_IG"].fix == "set META_TOKEN_IG to the Page access token"
    both = doctor.run(world.settings, file, environ={"META_TOKEN_IG": PAGE_TOKEN}, public_url=PUBLIC)
    assert doctor.summary_ok(both)
    # the Instagram account's token is the linked Page's: its /me is the Page, whose subscription is checked once
    assert [c.name for c in both if c.name.startswith("Meta Page")] == [f"Meta Page {PAGE_ID} webhooks"]


def test_templates_named_by_automatic_replies_must_be_saved(world: World) -> None:
    from bridge.playbook_config import AutoReply
    from bridge.store.desk import save_template

    file = world.file.model_copy(
        update={
            "auto_replies": [AutoReply(kind="welcome", template="hello"), AutoReply(kind="away", template="closed")]
        }
    )

    def check() -> doctor.Check:
        results = doctor.run(world.settings, file, environ={}, public_url=PUBLIC)
        return next(c for c in results if c.name == "Automatic replies")

    assert "Automatic replies" not in world.run()  # none configured, nothing to check
    missing = check()
    assert not missing.ok and "closed, hello" in missing.detail and "/dm template add" in missing.fix
    db = Database(world.settings.database_url)
    with db.session() as s:
        save_template(s, "hello", "Hi {first_name}!", "U0AGENT1", 0.0)
    assert not check().ok and "closed" in check().detail and "hello" not in check().detail
    with db.session() as s:
        save_template(s, "closed", "We open at {next_open}.", "U0AGENT1", 0.0)
    db.dispose()
    assert check().ok and "closed, hello" in check().detail
