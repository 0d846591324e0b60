"""Leads and records end to end through serve: "Mark as lead" on the card, `@dmbridge lead …`, the signed CRM
hand-off (with retries and its ✅), `/dm list leads`, `/dm export 12` and `/dm stats`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import select

from bridge.playbook_config import Crm
from bridge.sandbox.crm import CrmEmulator
from bridge.sandbox.demo import MARIA, SAM
from bridge.sandbox.harness import CHANNEL, Sandbox, shown, start_sandbox, wait_for
from bridge.sandbox.server import OffsetClock
from bridge.sandbox.slack import BOT_USER
from bridge.store.tables import Lead, Outbox
from bridge.toml_config import FileConfig


@pytest.fixture
def crm() -> Iterator[CrmEmulator]:
    receiver = CrmEmulator()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def box(clock: OffsetClock, crm: CrmEmulator) -> Iterator[Sandbox]:
    file = FileConfig(brand="Acme", timezone="Europe/Berlin", crm=Crm(url=crm.url))
    sandbox = start_sandbox(file=file, clock=clock, environ={"DMBRIDGE_CRM_SECRET": crm.secret})
    try:
        yield sandbox
    finally:
        sandbox.close()


def lead_of(box: Sandbox) -> Lead | None:
    with box.bridge.ctx.db.session() as s:
        return s.exec(select(Lead)).first()


def new_conversation(box: Sandbox, text: str = "How much is the blue sofa? <script>alert(1)</script>") -> str:
    box.x.customer_sends(MARIA, text)
    return box.thread_with("blue sofa")


def test_mark_as_lead_hands_a_signed_post_with_the_transcript_to_the_crm(box: Sandbox, crm: CrmEmulator) -> None:
    ts = new_conversation(box)
    box.slack.click(SAM, CHANNEL, ts, "conv_lead")
    wait_for(lambda: "Lead: *:seedling: new*" in shown(box.slack.messages_by_ts(CHANNEL, ts)), what="lead on card")
    first = wait_for(lambda: crm.received, what="the CRM's first lead")[0]
    assert first["stage"] == "new" and first["lead"]["updated_by"] == SAM
    assert first["customer"]["name"] == "Maria López" and first["customer"]["platform"] == "x"
    assert first["thread_link"] and first["transcript"][0]["who"] == "customer"
    assert "<script>" in first["transcript"][0]["text"]  # the CRM gets the text as written; JSON carries it safely
    line = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts)[1:] if "Marked as a lead" in shown(m)], what="the line"
    )[0]
    wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, line["ts"]), what="the CRM receipt")

    crm.fail_next(503, times=2)  # the CRM is down for a while: retried, then delivered
    box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> lead qualified 1200 EUR", thread_ts=ts)
    # two backoffs (up to 2.5 s and 5 s with jitter) before the third try: room for a loaded machine
    second = wait_for(lambda: crm.received[1:], timeout=40, what="the retried hand-off")[0]
    assert crm.refused == [503, 503]
    assert second["stage"] == "qualified" and second["lead"]["value_minor"] == 120000
    assert second["lead"]["currency"] == "EUR" and second["lead"]["value"] == "1,200.00 EUR"
    wait_for(lambda: "qualified · 1,200.00 EUR" in shown(box.slack.messages_by_ts(CHANNEL, ts)), what="card")
    lead = lead_of(box)
    assert lead is not None and lead.stage == "qualified" and lead.value_minor == 120000

    answer = box.slack.slash_command(SAM, CHANNEL, "list leads").text
    assert "qualified · 1,200.00 EUR" in answer and "Maria" in answer


def test_a_lead_the_crm_refuses_for_good_is_said_in_the_thread_and_not_retried(box: Sandbox, crm: CrmEmulator) -> None:
    ts = new_conversation(box)
    crm.fail_next(422)  # the CRM refuses the payload (a 4xx other than 429): final
    box.slack.click(SAM, CHANNEL, ts, "conv_lead")
    notice = wait_for(
        lambda: [m for m in box.slack.thread(CHANNEL, ts)[1:] if "Not handed to the CRM" in shown(m)],
        what="the refusal in the thread",
    )[0]
    assert "422" in shown(notice)
    line = next(m for m in box.slack.thread(CHANNEL, ts)[1:] if "Marked as a lead" in shown(m))
    wait_for(lambda: "warning" in box.slack.reactions(CHANNEL, line["ts"]), what="⚠️ on the lead's line")
    with box.bridge.ctx.db.read() as s:
        posts = list(s.exec(select(Outbox).where(Outbox.kind == "crm_post")).all())
    assert [(p.state, p.attempts) for p in posts] == [("failed", 1)] and "422" in (posts[0].last_error or "")
    assert crm.refused == [422] and crm.received == []  # tried once, never again
    lead = lead_of(box)
    assert lead is not None and lead.stage == "new"  # the lead itself stands


def test_absurd_lead_input_is_refused_and_changes_nothing(box: Sandbox, crm: CrmEmulator) -> None:
    ts = new_conversation(box)
    for bad, why in [
        ("lead qualified -5 EUR", "negative"),
        ("lead qualified 1000000000000000000000000000000 EUR", "more than a lead"),
        ("lead qualified 12 EURO", "not a currency"),
        ("lead bought", "not a lead stage"),
        ("lead won 10.999 EUR", "decimal places"),
    ]:
        box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> {bad}", thread_ts=ts)
        wait_for(lambda why=why: [e for e in box.slack.ephemerals if why in e["text"]], what=f"refusal: {why}")
    assert lead_of(box) is None and crm.attempts == 0


def test_export_uploads_the_escaped_html_transcript_into_the_thread(box: Sandbox) -> None:
    ts = new_conversation(box)
    assert "on its way" in box.slack.slash_command(SAM, CHANNEL, "export 1").text
    files = wait_for(lambda: box.slack.files_in_thread(CHANNEL, ts), what="the transcript in the thread")
    assert files[0]["name"] == "conversation-1-transcript.html"
    page = box.slack.file_bytes(files[0]["id"]).decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page

    def written() -> Outbox | None:  # the file shows in the thread a moment before the row says sent
        with box.bridge.ctx.db.read() as s:
            found = s.exec(select(Outbox).where(Outbox.kind == "transcript_upload")).one()
        return found if found.state == "sent" else None

    row = wait_for(written, what="the upload's outcome written")
    assert json.loads(row.payload)["requested_by"] == SAM


def test_stats_show_the_playbook_figures_and_the_digest_posts_once_a_week(box: Sandbox, crm: CrmEmulator) -> None:
    ts = new_conversation(box)
    box.slack.post_as_user(SAM, CHANNEL, f"<@{BOT_USER}> lead won 1500 EUR", thread_ts=ts)
    wait_for(lambda: lead_of(box) is not None, what="the lead")
    answer = box.slack.slash_command(SAM, CHANNEL, "stats 7d").text
    assert "The DM playbook" in answer and "won 1 (100%)" in answer and "value won 1,500.00 EUR" in answer
    assert "By platform x" in answer and "CSAT —" in answer  # no survey answered yet
    from bridge.stats import post_digest

    ctx = box.bridge.ctx
    assert post_digest(ctx.db, ctx.toml, CHANNEL, ctx.clock()) is True
    assert post_digest(ctx.db, ctx.toml, CHANNEL, ctx.clock()) is False  # once per ISO week
    ctx.wake_slack.set()
    wait_for(lambda: [m for m in box.slack.messages(CHANNEL) if "Weekly digest" in shown(m)], what="the digest")
