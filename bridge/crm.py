"""The CRM hand-off (``[crm]``): a lead's stage change POSTed as signed JSON (``CrmPost`` deliveries).

The body is ``bridge.leads.crm_payload`` with the conversation's transcript as stored when it is sent; the
signature is ``X-Dmbridge-Signature: sha256=<hex HMAC-SHA256 of the body>`` under the secret in the environment
variable ``[crm] secret_env``, as the generic source's replies are signed. 2xx is delivered; 429, 5xx and
network failures are retried by the platform runner; anything else is refused for good, with the status.
The CRM should deduplicate by ``event_id``: a POST whose answer was lost is sent again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from bridge import tls
from bridge.deliveries import CrmPost
from bridge.domain import Platform
from bridge.errors import Rejected, RetryLater, unreachable
from bridge.leads import crm_payload, format_money
from bridge.store import records
from bridge.store.db import Database
from bridge.store.tables import Conversation
from connectors import signing

SIGNATURE_HEADER = "X-Dmbridge-Signature"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class CrmClient:
    def __init__(
        self,
        db: Database,
        url: str,
        secret: str,
        link: Callable[[str, str], str],
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.db, self.url, self.secret, self.link = db, url, secret, link
        self.http = httpx.Client(timeout=timeout, transport=transport, verify=tls.verifying())

    def body(self, post: CrmPost, conv: Conversation) -> bytes:
        assert conv.id is not None
        with self.db.read() as s:
            rows = records.messages(s, conv.id)
        payload = crm_payload(
            event_id=post.key,
            lead={
                "conversation": conv.id,
                "stage": post.stage,
                "value_minor": post.value_minor,
                "currency": post.currency,
                "value": format_money(post.value_minor, post.currency) or None,
                "updated_at": _iso(post.at),
                "updated_by": post.by,
            },
            customer={
                "id": conv.customer_id,
                "name": conv.customer_name,
                "handle": conv.customer_handle,
                "platform": conv.platform,
                "platform_label": Platform(conv.platform).label,
                "account": conv.account,
            },
            conversation={"id": conv.id, "status": conv.status, "inquiry_type": conv.inquiry_type},
            thread_link=self.link(conv.channel, conv.thread_ts) if conv.thread_ts else None,
            transcript=[{"at": _iso(at), "who": who, "author": author, "text": text} for at, who, author, text in rows],
        )
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def post(self, post: CrmPost, conv: Conversation) -> str:
        body = self.body(post, conv)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signing.hex_sha256(self.secret, body)}
        try:
            resp = self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise unreachable("the CRM", exc) from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RetryLater(f"the CRM answered {resp.status_code}")
        if not 200 <= resp.status_code < 300:
            raise Rejected(f"the CRM refused the lead ({resp.status_code})")
        return f"crm:{resp.status_code}"

    def close(self) -> None:
        self.http.close()
