"""``dmbridge demo``: a scripted exchange on the emulators, printed from both sides."""

from __future__ import annotations

import hashlib
import random
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

from bridge.playbook_config import AutoReply, Csat
from bridge.sandbox.harness import (
    CHANNEL,
    IG_CUSTOMER,
    MESSENGER_CUSTOMER,
    PAGE_ID,
    Sandbox,
    shown,
    start_sandbox,
    wait_for,
)
from bridge.toml_config import FileConfig

MARIA, JDOE = "1290011223344556677", "1290011223344559999"
AIKO = "1290011223344557777"  # writes by X Chat, encrypted
SAM, KIM = "U0AGENT1", "U0AGENT2"


def photo(width: int = 200, height: int = 150, seed: int = 4471) -> bytes:
    """A real PNG (noisy pixels, so it does not shrink to nothing): what a customer's phone would send."""
    pixels = random.Random(seed).randbytes(3 * width * height)
    rows = b"".join(b"\x00" + pixels[3 * width * y : 3 * width * (y + 1)] for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


WELCOME = "Hi {first_name}, thanks for writing to {brand}! An agent will answer here shortly."


def send_suggested(box: Sandbox, user: str, ts: str, template: str) -> None:
    """Click the suggested reply naming ``template`` under the customer's message, and send it as shown."""

    def button() -> tuple[str, str] | None:
        for msg in box.slack.thread(CHANNEL, ts)[1:]:
            for block in msg.get("blocks") or []:
                for element in block.get("elements") or []:
                    if str(element.get("action_id", "")).startswith("sugg_tpl") and template in str(element):
                        return str(msg["ts"]), str(element["action_id"])
        return None

    message_ts, action_id = wait_for(button, what=f"the suggested reply {template!r}")
    before = set(box.slack.views)
    box.slack.click(user, CHANNEL, message_ts, action_id)
    view_id = wait_for(lambda: next(iter(set(box.slack.views) - before), None), what="the template modal")
    block = next(b for b in box.slack.views[view_id]["blocks"] if b["type"] == "input")
    text = block["element"].get("initial_value", "")
    box.slack.submit_view(user, view_id, {block["block_id"]: {"text": {"type": "plain_text_input", "value": text}}})


def _landed(box: Sandbox, ts: str, data: bytes) -> bool:
    """A file in the thread has exactly these bytes."""
    want = hashlib.sha256(data).digest()
    return any(
        hashlib.sha256(box.slack.file_bytes(f["id"])).digest() == want for f in box.slack.files_in_thread(CHANNEL, ts)
    )


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
            body = re.sub(
                r"<@(\w+)>",
                lambda m: "@" + str(box.slack.users.get(m.group(1), {}).get("name", m.group(1))),
                shown(msg),
            ).replace("\n", "\n      ")
            body += "".join(f" [file {f['name']}, {max(1, f['size'] // 1024)} KB]" for f in msg.get("files", []))
            lines.append(f"{indent}[{who}] {body.strip()}" + (f"   {marks}" if marks else ""))
        lines.append("")
    lines.append("=== X (what each customer's DM inbox shows) ===")
    names = {MARIA: "Maria López (@maria_l)", JDOE: "J Doe (@jdoe_buyer)"}
    for user, name in names.items():
        lines.append(f"{name}:")
        for event in box.x.events():
            if user in str(event.get("dm_conversation_id", "")):
                who = "  them → brand" if event["sender_id"] == user else "  brand → them"
                lines.append(f"{who}: {event['text']}")
    if AIKO in box.x.chat.people:
        lines.append("Aiko Tanaka (@aiko_t), X Chat — what her app decrypted from the brand:")
        lines.extend(f"  brand → them 🔒: {text}" for text in box.x.chat_received_by(AIKO))
    if box.meta is not None:
        lines.append("")
        lines.append("=== Messenger and Instagram (what each customer's inbox shows) ===")
        for user, name in ((MESSENGER_CUSTOMER, "Lena Fischer (Messenger)"), (IG_CUSTOMER, "Tomás Ruiz (Instagram)")):
            lines.append(f"{name}:")
            for entry in box.meta.log(user):
                who = "  them → brand" if entry["from"] == "customer" else "  brand → them"
                shared = "".join(f" [photo {name}]" for name in entry.get("files", []))
                lines.append(f"{who}: {entry['text']}{shared}".replace(":  [", ": ["))
    return lines


def run_demo(say: Callable[[str], Any] = print) -> bool:
    """Play the script; True only if every expected delivery happened."""
    say("Starting emulated Slack, X and Meta, and dmbridge against them (SLACK_API_URL, X_API_URL, META_GRAPH_URL)…")
    playbook = FileConfig(
        brand="Acme",
        auto_replies=[AutoReply(kind="welcome", template="welcome", platforms=["messenger"])],
        csat=Csat(accounts=[PAGE_ID]),
    )
    box = start_sandbox(
        meta=True,
        file=playbook,
        dmbridge_slack_posts_per_second=1.0,
        x_chat=True,
        x_webhooks=True,
        x_reconcile_seconds=2.0,
    )
    meta = box.meta
    assert meta is not None
    failures: list[str] = []
    try:
        say(f"  Slack Web API emulator: {box.slack.api_url}")
        say(f"  X API emulator:         {box.x.api_url}")
        say(f"  Graph API emulator:     {meta.graph_url}")
        say(f"  dmbridge listening on:  {box.events_url}, {box.http.url}/webhooks/x and …/webhooks/meta")
        box.x.add_chat_customer(AIKO, "aiko_t", "Aiko Tanaka")
        box.slack.slash_command(KIM, CHANNEL, f"template add welcome {WELCOME}")
        box.slack.slash_command(
            KIM, CHANNEL, "template add shipping We do: 5–7 business days to Canada, duties included."
        )
        say("Kim saves two templates: a welcome that dmbridge sends new Messenger customers, and shipping times…")
        box.x.customer_sends(MARIA, "Hi! My order #5512 never arrived <!channel> :(")
        box.x.customer_sends(JDOE, "Do you ship to Canada?")
        say("Two customers DM the brand on X…")
        maria_ts = wait_for(lambda: _thread_of(box, "never arrived"), what="Maria's thread")
        jdoe_ts = wait_for(lambda: _thread_of(box, "ship to Canada"), what="J Doe's thread")
        meta.customer_sends(MESSENGER_CUSTOMER, "Can I change the delivery address for order #7731?")
        coat = photo()
        meta.customer_sends(IG_CUSTOMER, "¿El abrigo azul viene en talla M? 🧥")
        meta.customer_sends(IG_CUSTOMER, "", attachments=[(coat, "image", "IMG_4471.png")])
        say("One customer writes on Messenger, one on Instagram (signed webhooks), with a photo from its CDN (https)…")
        lena_ts = wait_for(lambda: _thread_of(box, "delivery address"), what="Lena's Messenger thread")
        tomas_ts = wait_for(lambda: _thread_of(box, "abrigo azul"), what="Tomás's Instagram thread")
        wait_for(lambda: _landed(box, tomas_ts, coat), what="Tomás's photo in his thread")
        box.x.customer_chats(AIKO, "Is the gift wrap free? (sent by X Chat, encrypted end to end)")
        say("One customer writes by X Chat: encrypted on her phone, decrypted by dmbridge with chatxdk…")
        aiko_ts = wait_for(lambda: _thread_of(box, "gift wrap free"), what="Aiko's X Chat thread")
        reply5 = "Yes, gift wrap is free on every order, Aiko."
        aiko_reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, reply5, thread_ts=aiko_ts)

        reply1 = "Sorry about that, Maria! A replacement ships today; tracking follows by DM."
        reply2 = "We do: 5–7 business days to Canada, duties included."
        note = "// check warehouse stock for #5512 before promising anything"
        sam_ts, _ = box.slack.post_as_user(SAM, CHANNEL, reply1, thread_ts=maria_ts)
        box.slack.post_as_user(KIM, CHANNEL, note, thread_ts=maria_ts)
        wait_for(lambda: "service?" in shown(box.slack.thread(CHANNEL, maria_ts)[0]), what="Maria's suggested type")
        box.slack.click(SAM, CHANNEL, maria_ts, "conv_type_confirm")
        say("Maria's first message suggested the type *service*; Sam confirms it on the card…")
        send_suggested(box, KIM, jdoe_ts, "shipping")
        say("Under J Doe's question dmbridge suggests the shipping template; Kim clicks it and sends it…")
        reply3 = "Of course, Lena: reply with the new address and we'll update #7731."
        reply4 = "¡Sí! La talla M está disponible en azul."
        lena_reply_ts, _ = box.slack.post_as_user(SAM, CHANNEL, reply3, thread_ts=lena_ts)
        tomas_reply_ts, _ = box.slack.post_as_user(KIM, CHANNEL, reply4, thread_ts=tomas_ts)
        size_m = photo(seed=7731)
        tomas_photo_ts, _, _ = box.slack.share_file_as_user(
            KIM, CHANNEL, size_m, "abrigo-azul-M.png", thread_ts=tomas_ts, mimetype="image/png"
        )
        say("Agents answer in the threads (one with a photo, read from Slack and sent by Instagram; and a note)…")
        wait_for(lambda: box.x.received_by(MARIA) and box.x.received_by(JDOE), what="replies on X")
        wait_for(
            lambda: meta.received_by(MESSENGER_CUSTOMER) and len(meta.received_by(IG_CUSTOMER)) == 2,
            what="replies on Messenger and Instagram",
        )
        box.slack.click(SAM, CHANNEL, lena_ts, "conv_resolve")
        wait_for(lambda: any(m.get("quick_replies") for m in meta.log(MESSENGER_CUSTOMER)), what="Lena's survey")
        meta.customer_taps(MESSENGER_CUSTOMER, "5 ⭐⭐⭐⭐⭐")
        say("Sam resolves Lena's conversation; she gets a 1-5 survey and taps 5…")
        box.x.customer_sends(MARIA, "Thank you so much!")
        wait_for(
            lambda: any("Thank you so much" in shown(m) for m in box.slack.thread(CHANNEL, maria_ts)),
            what="Maria's second message in her thread",
        )
        wait_for(
            lambda: all(
                "white_check_mark" in box.slack.reactions(CHANNEL, ts)
                for ts in (sam_ts, lena_reply_ts, tomas_reply_ts, tomas_photo_ts, aiko_reply_ts)
            ),
            what="delivery receipts",
        )

        say(
            "The desk: Sam takes Maria's conversation with the card's button; Kim saves a template and "
            "sends it in J Doe's thread; /dm list shows what is open…"
        )
        box.slack.click(SAM, CHANNEL, maria_ts, "conv_claim")
        saved = box.slack.slash_command(
            KIM,
            CHANNEL,
            "template add tracking Hi {first_name}, here is your "
            "tracking link: https://track.example/{conversation} "
            "— {agent_first_name}, {brand}",
        ).text
        box.slack.post_as_user(KIM, CHANNEL, "<@U0BOT> template tracking", thread_ts=jdoe_ts)
        template_text = "Hi J, here is your tracking link: https://track.example/2 — Kim, Acme"
        wait_for(lambda: box.x.received_by(JDOE) == [reply2, template_text], what="the template on X")
        listing = box.slack.slash_command(SAM, CHANNEL, "list mine").text
        say("  /dm list mine → " + listing.replace("\n", "\n    "))

        checks = {
            "five conversations, five threads": len(box.slack.roots(CHANNEL)) == 5,
            "Aiko's app decrypted exactly Sam's encrypted reply": box.x.chat_received_by(AIKO) == [reply5],
            "Aiko's card says X Chat": "X Chat" in shown(box.slack.thread(CHANNEL, aiko_ts)[0]),
            "Lena was welcomed, then got Sam's reply": meta.received_by(MESSENGER_CUSTOMER)[:2]
            == [WELCOME.replace("{first_name}", "Lena").replace("{brand}", "Acme"), reply3],
            "Lena's rating is on her card": "CSAT: ⭐ 5/5" in shown(box.slack.thread(CHANNEL, lena_ts)[0]),
            "Maria's card shows the confirmed type": "service*" in shown(box.slack.thread(CHANNEL, maria_ts)[0]),
            "Tomás received exactly Kim's reply on Instagram, then her photo": meta.received_by(IG_CUSTOMER)
            == [reply4, "[image abrigo-azul-M.png]"],
            "Kim's photo reached Tomás byte for byte": [
                e["file"]["sha256"] for e in meta.log(IG_CUSTOMER) if e.get("file")
            ]
            == [hashlib.sha256(size_m).hexdigest()],
            "Tomás's photo landed in his thread, byte for byte": _landed(box, tomas_ts, coat),
            "Messenger and Instagram threads show the customers' names": all(
                name in shown(box.slack.thread(CHANNEL, ts)[0])
                for name, ts in (("Lena Fischer", lena_ts), ("Tomás Ruiz", tomas_ts))
            ),
            "Maria received exactly Sam's reply": box.x.received_by(MARIA) == [reply1],
            "J Doe received the suggested reply, then the template": box.x.received_by(JDOE) == [reply2, template_text],
            "the template was saved": "Saved template" in saved,
            "the card shows Sam as assignee": f"Assignee: <@{SAM}>" in shown(box.slack.thread(CHANNEL, maria_ts)[0]),
            "the note stayed in Slack": all("warehouse" not in t for u in (MARIA, JDOE) for t in box.x.received_by(u)),
            "<!channel> arrived inert": all(
                "<!channel>" not in str(m.get("blocks")) for m in box.slack.thread(CHANNEL, maria_ts)
            ),
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
