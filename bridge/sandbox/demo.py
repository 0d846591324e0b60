"""``dmbridge demo``: a scripted exchange on the emulators, printed from both sides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.sandbox.harness import CHANNEL, Sandbox, shown, start_sandbox, wait_for

MARIA, JDOE = "1290011223344556677", "1290011223344559999"
SAM, KIM = "U0AGENT1", "U0AGENT2"


def _thread_of(box: Sandbox, customer_text: str) -> str | None:
    for root in box.slack.roots(CHANNEL):
        if any(customer_text in shown(m) for m in box.slack.thread(CHANNEL, root["ts"])):
            return str(root["ts"])
    return None


def transcript(box: Sandbox) -> list[str]:
    users = {SAM: "Sam Rivera (agent)", KIM: "Kim Chen (agent)"}
    lines = ["", "=== Slack #social-inbox ==="]
    for root in box.slack.roots(CHANNEL):
        for i, msg in enumerate(box.slack.thread(CHANNEL, root["ts"])):
            who = msg.get("username") or users.get(msg.get("user", ""), "dmbridge")
            marks = " ".join(f":{name}:" for name in box.slack.reactions(CHANNEL, msg["ts"]))
            indent = "" if i == 0 else "    ↳ "
            body = shown(msg).replace("\n", "\n      ")
            lines.append(f"{indent}[{who}] {body}" + (f"   {marks}" if marks else ""))
        lines.append("")
    lines.append("=== X (what each customer's DM inbox shows) ===")
    names = {MARIA: "Maria López (@maria_l)", JDOE: "J Doe (@jdoe_buyer)"}
    for user, name in names.items():
        lines.append(f"{name}:")
        for event in box.x.events():
            if user in str(event.get("dm_conversation_id", "")):
                who = "  them → brand" if event["sender_id"] == user else "  brand → them"
                lines.append(f"{who}: {event['text']}")
    return lines


def run_demo(say: Callable[[str], Any] = print) -> bool:
    """Play the script; True only if every expected delivery happened."""
    say("Starting emulated Slack and X, and dmbridge against them (SLACK_API_URL, X_API_URL)…")
    box = start_sandbox(dmbridge_slack_posts_per_second=1.0)
    failures: list[str] = []
    try:
        say(f"  Slack Web API emulator: {box.slack.api_url}")
        say(f"  X API emulator:         {box.x.api_url}")
        say(f"  dmbridge listening on:  {box.events_url}")
        box.x.customer_sends(MARIA, "Hi! My order #5512 never arrived <!channel> :(")
        box.x.customer_sends(JDOE, "Do you ship to Canada?")
        say("Two customers DM the brand on X…")
        maria_ts = wait_for(lambda: _thread_of(box, "never arrived"), what="Maria's thread")
        jdoe_ts = wait_for(lambda: _thread_of(box, "ship to Canada"), what="J Doe's thread")

        reply1 = "Sorry about that, Maria! A replacement ships today; tracking follows by DM."
        reply2 = "We do: 5–7 business days to Canada, duties included."
        note = "// check warehouse stock for #5512 before promising anything"
        sam_ts, _ = box.slack.post_as_user(SAM, CHANNEL, reply1, thread_ts=maria_ts)
        box.slack.post_as_user(KIM, CHANNEL, note, thread_ts=maria_ts)
        kim_ts, _ = box.slack.post_as_user(KIM, CHANNEL, reply2, thread_ts=jdoe_ts)
        say("Agents answer in the threads (and one internal note)…")
        wait_for(lambda: box.x.received_by(MARIA) and box.x.received_by(JDOE), what="replies on X")
        box.x.customer_sends(MARIA, "Thank you so much!")
        wait_for(lambda: any("Thank you so much" in shown(m) for m in box.slack.thread(CHANNEL, maria_ts)),
                 what="Maria's second message in her thread")
        wait_for(lambda: "white_check_mark" in box.slack.reactions(CHANNEL, sam_ts)
                 and "white_check_mark" in box.slack.reactions(CHANNEL, kim_ts), what="delivery receipts")

        checks = {
            "two conversations, two threads": len(box.slack.roots(CHANNEL)) == 2,
            "Maria received exactly Sam's reply": box.x.received_by(MARIA) == [reply1],
            "J Doe received exactly Kim's reply": box.x.received_by(JDOE) == [reply2],
            "the note stayed in Slack": all("warehouse" not in t for u in (MARIA, JDOE)
                                            for t in box.x.received_by(u)),
            "<!channel> arrived inert": all("<!channel>" not in str(m.get("blocks"))
                                            for m in box.slack.thread(CHANNEL, maria_ts)),
            "Maria's reply joined her thread": _thread_of(box, "Thank you so much") == maria_ts,
        }
        failures = [name for name, ok in checks.items() if not ok]
    except TimeoutError as exc:
        failures.append(str(exc))
    finally:
        for line in transcript(box):
            say(line)
        box.close()
    say("")
    if failures:
        say("DEMO FAILED: " + "; ".join(failures))
        return False
    say("Demo complete: every message was delivered once, to the right place.")
    return True
