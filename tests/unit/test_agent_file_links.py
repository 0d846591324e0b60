"""Agents' files, in process: the signed links (``MediaLinks``), reading a file from Slack (``AgentFiles``) with
``httpx.MockTransport`` standing in for Slack's file server, the parts a reply with files becomes, the limits'
refusals, and what of a ``file_share`` event is kept."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.deliveries import DM
from bridge.domain import AgentFile, FileLimits, Platform
from bridge.errors import AuthFailed, Rejected
from bridge.slack.agent_files import AgentFiles, MediaLinks, shared_in
from bridge.slack.slim import slim
from bridge.thread_messages import MAX_FILES, agent_files, file_refusal
from connectors.meta.convert import LIMITS

API = "https://slack.com/api/"
LIMITS_ANY = FileLimits(max_bytes=dict.fromkeys(("image", "video", "audio", "file"), 10_000_000), label="Test")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FilesInfo:
    """``SlackApi.file_info`` as Slack answers it."""

    def __init__(self, **file: Any) -> None:
        self.file = {
            "id": "F1",
            "name": "label.png",
            "mimetype": "image/png",
            "size": 5,
            "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/label.png",
            "channels": ["C1"],
            **file,
        }
        self.asked: list[str] = []

    def file_info(self, file_id: str) -> dict[str, Any]:
        self.asked.append(file_id)
        return self.file


def reader(info: FilesInfo, handler: Any, links: MediaLinks | None = None) -> AgentFiles:
    return AgentFiles(
        info,  # type: ignore[arg-type]
        token="xoxb-secret",
        api_url=API,
        cap_mb=100,
        timeout=5,
        links=links,
        transport=httpx.MockTransport(handler),
    )


# ------------------------------------------------------------------------------------------------------ links


def test_a_link_names_its_file_and_conversation_until_it_expires() -> None:
    clock = Clock()
    links = MediaLinks("xoxb-secret", "https://dm.example.com/", 24, clock)
    url = links.link("F1", 7)
    assert url.startswith("https://dm.example.com/media/") and "xoxb" not in url
    token = url.rsplit("/", 1)[1]
    assert links.read(token) == ("F1", 7)
    clock.now += 24 * 3600 + 1
    assert links.read(token) is None


def test_a_link_signed_with_another_key_or_altered_is_refused() -> None:
    clock = Clock()
    token = MediaLinks("other-token", "https://x", 24, clock).link("F1", 7).rsplit("/", 1)[1]
    links = MediaLinks("xoxb-secret", "https://x", 24, clock)
    assert links.read(token) is None
    good = links.link("F1", 7).rsplit("/", 1)[1]
    signature = good.partition(".")[2]
    forged_body = MediaLinks("xoxb-secret", "https://x", 24, clock).link("F2", 7).rsplit("/", 1)[1].split(".")[0]
    assert links.read(f"{forged_body}.{signature}") is None  # another file under this signature


@given(st.text(max_size=300))
def test_no_arbitrary_token_is_read_as_a_link(token: str) -> None:
    assert MediaLinks("xoxb-secret", "https://x", 24, Clock()).read(token) is None


# ------------------------------------------------------------------------------------------------------ reading


def test_the_file_is_read_with_the_bot_token_into_a_file_removed_afterwards() -> None:
    seen: list[httpx.Request] = []

    def slack(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"\x89PNG!", headers={"content-type": "image/png"})

    info = FilesInfo()
    with reader(info, slack).outbound(AgentFile("F1", "label.png"), LIMITS_ANY, 7) as file:
        assert Path(file.path).read_bytes() == b"\x89PNG!"
        assert (file.name, file.kind, file.content_type, file.size) == ("label.png", "image", "image/png", 5)
        path = file.path
    assert not Path(path).exists()
    assert seen[0].headers["authorization"] == "Bearer xoxb-secret" and info.asked == ["F1"]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/files-pri/T1-F1/download/label.png",
        "http://files.slack.com/files-pri/T1-F1/download/label.png",  # not https
        "https://files.slack.com.evil.example/x",
        "https://slack.com@evil.example/x",
    ],
)
def test_the_token_never_goes_to_a_host_that_is_not_slacks(url: str) -> None:
    def slack(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the token went to {request.url}")

    with (
        pytest.raises(Rejected, match="not Slack"),
        reader(FilesInfo(url_private_download=url), slack).outbound(AgentFile("F1", "label.png"), LIMITS_ANY, 7),
    ):
        pass


def test_a_redirect_off_slack_is_not_followed() -> None:
    def slack(request: httpx.Request) -> httpx.Response:
        if request.url.host == "files.slack.com":
            return httpx.Response(302, headers={"location": "https://evil.example/steal"})
        raise AssertionError("followed a redirect off Slack")

    with pytest.raises(Rejected), reader(FilesInfo(), slack).outbound(AgentFile("F1", "x.png"), LIMITS_ANY, 7):
        pass


def test_slacks_sign_in_page_instead_of_the_file_names_the_missing_scope() -> None:
    def slack(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<!DOCTYPE html>Sign in", headers={"content-type": "text/html"})

    with (
        pytest.raises(Rejected, match="files:read"),
        reader(FilesInfo(), slack).outbound(AgentFile("F1", "x.png"), LIMITS_ANY, 7),
    ):
        pass


def test_a_refused_token_is_an_auth_failure_and_a_file_larger_than_slack_said_stops_at_the_cap() -> None:
    with (
        pytest.raises(AuthFailed),
        reader(FilesInfo(), lambda r: httpx.Response(403)).outbound(AgentFile("F1", "x.png"), LIMITS_ANY, 7),
    ):
        pass
    small = FileLimits(max_bytes={"image": 10}, label="Tiny")
    with (
        pytest.raises(Rejected, match="larger than"),
        reader(
            FilesInfo(size=5), lambda r: httpx.Response(200, content=b"x" * 64, headers={"content-type": "image/png"})
        ).outbound(AgentFile("F1", "x.png"), small, 7),
    ):
        pass


def test_the_limits_are_checked_again_on_what_slack_says_now() -> None:
    def slack(request: httpx.Request) -> httpx.Response:
        raise AssertionError("read a file the platform refuses")

    info, limits = FilesInfo(size=9_000_000), LIMITS[Platform.INSTAGRAM].files
    assert limits is not None
    with (
        pytest.raises(Rejected, match="Instagram takes images up to 8 MB"),
        reader(info, slack).outbound(AgentFile("F1", "big.png"), limits, 7),
    ):
        pass


def test_a_link_is_served_only_while_the_file_is_shared_in_its_conversations_channel() -> None:
    clock = Clock()
    links = MediaLinks("xoxb-secret", "https://dm.example.com", 24, clock)
    body = b"%PDF-1.7 manual"

    def slack(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/pdf"})

    info = FilesInfo(name="manual.pdf", mimetype="application/pdf", size=len(body))
    files = reader(info, slack, links)
    token = links.link("F1", 7).rsplit("/", 1)[1]
    found = files.serve(token, lambda conv: "C1" if conv == 7 else None)
    assert found is not None
    assert hashlib.sha256(b"".join(found[1])).digest() == hashlib.sha256(body).digest()
    assert files.serve(token, lambda conv: "C2") is None  # the conversation moved: the file is not shared there
    assert files.serve(token, lambda conv: None) is None  # the conversation is gone
    assert shared_in({"shares": {"private": {"G1": []}}, "channels": ["C1"]}) == {"G1", "C1"}


# ------------------------------------------------------------------------------------------------------ parts


def test_text_parts_come_first_and_each_file_is_a_part_of_its_own() -> None:
    files = (AgentFile("F1", "a.png", "image/png"), AgentFile("F2", "b.pdf", "application/pdf"))
    parts = DM.relay(7, "C1", "5.6", ["one", "two"], "U1", files)
    assert [(p.text, p.file.id if p.file else None) for p in parts] == [
        ("one", None),
        ("two", None),
        ("", "F1"),
        ("", "F2"),
    ]
    assert [p.parts for p in parts] == [4] * 4 and [p.key for p in parts][-1] == "relay:C1:5.6:3"


def test_with_text_the_first_file_rides_on_the_last_text_part() -> None:
    files = (AgentFile("F1", "a.png", "image/png"), AgentFile("F2", "b.png", "image/png"))
    parts = DM.relay(7, "C1", "5.6", ["hello"], "U1", files, with_text=True)
    assert [(p.text, p.file.id if p.file else None) for p in parts] == [("hello", "F1"), ("", "F2")]
    only_files = DM.relay(7, "C1", "5.6", [], "U1", files, with_text=True)
    assert [(p.text, p.file.id if p.file else None) for p in only_files] == [("", "F1"), ("", "F2")]


def test_refusals_name_the_file_and_the_platforms_rule() -> None:
    ig = LIMITS[Platform.INSTAGRAM]
    assert file_refusal((AgentFile("F1", "a.png", "image/png", 9_000_000),), ig) == (
        "Instagram takes images up to 8 MB; a.png is 9.0 MB"
    )
    assert "Instagram takes other files as pdf only" in str(
        file_refusal((AgentFile("F1", "a.zip", "application/zip", 10),), ig)
    )
    assert file_refusal((AgentFile("F1", "a.png", "", None),), ig) is None  # no type in the event: checked at send
    text_only = LIMITS[Platform.MESSENGER].__class__(max_chars=10)
    assert "text only" in str(file_refusal((AgentFile("F1", "a.png", "image/png", 1),), text_only))


# ------------------------------------------------------------------------------------------------------ events


def test_only_the_fields_used_are_kept_of_a_file_share_and_hostile_entries_are_dropped() -> None:
    hostile = [
        {"id": "F1", "name": "../../etc/<passwd>|x", "mimetype": "image/png", "size": 3, "url_private": "https://x"},
        {"id": 42, "name": "no string id"},
        "not a file",
        {"id": "F2", "name": "gone.png", "mode": "tombstone"},
        {"id": "F3", "name": "neg.png", "size": -5},
    ] + [{"id": f"F{i}", "name": f"{i}.png"} for i in range(10, 40)]
    found = agent_files(hostile)
    assert len(found) <= MAX_FILES
    assert found[0] == AgentFile("F1", "passwdx", "image/png", 3)
    assert [f.id for f in found[:2]] == ["F1", "F3"] and found[1].size is None
    event = {"type": "message", "subtype": "file_share", "channel": "C1", "ts": "2.0", "thread_ts": "1.0",
             "user": "U1", "text": "", "files": hostile}  # fmt: skip
    kept = slim({"event": event})["event"]
    assert len(kept["files"]) <= MAX_FILES and set(kept["files"][0]) == {"id", "name", "mimetype", "size"}
