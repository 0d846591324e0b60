from bridge.manifest import dump, load, render

SHORTCUTS = {"dmbridge_assign", "dmbridge_template", "dmbridge_escalate", "dmbridge_status"}


def test_http_manifest_points_every_url_at_slack_events() -> None:
    m = render("https://dm.example.com/")
    url = "https://dm.example.com/slack/events"
    assert m["settings"]["event_subscriptions"]["request_url"] == url
    assert m["settings"]["interactivity"]["request_url"] == url
    assert [c["url"] for c in m["features"]["slash_commands"]] == [url]
    assert m["settings"]["socket_mode_enabled"] is False


def test_socket_manifest_has_no_urls() -> None:
    text = dump(render(socket=True))
    assert "request_url" not in text and "url:" not in text and "socket_mode_enabled: true" in text


def test_scopes_events_and_shortcuts_cover_what_the_bridge_uses() -> None:
    m = load()
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {
        "chat:write",
        "chat:write.customize",
        "reactions:write",
        "commands",
        "users:read",
        "usergroups:read",
        "channels:history",
        "channels:read",
        "app_mentions:read",
    } <= scopes
    assert set(m["settings"]["event_subscriptions"]["bot_events"]) == {
        "message.channels",
        "message.groups",
        "app_mention",
        "app_home_opened",
    }
    assert {s["callback_id"] for s in m["features"]["shortcuts"]} == SHORTCUTS
