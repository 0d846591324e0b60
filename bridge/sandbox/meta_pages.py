"""The Meta emulator's Page endpoints doctor reads: ``GET /me`` and ``GET``/``POST /{page-id}/subscribed_apps``;
and the ``/{version}`` path segment every Graph route starts with (any ``vNN.N``, as Graph serves each version
it still supports)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from bridge.sandbox.meta import MetaEmulator, _Account


class _GraphVersion(Convertor[str]):
    """A Graph API version path segment: ``v26.0``, ``v21.0``…"""

    regex = r"v[0-9]+\.[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", _GraphVersion())
V = "/{version:graph_version}"
# Page webhook fields Graph accepts in subscribed_fields (Messenger Platform webhook events reference)
PAGE_FIELDS = frozenset(
    {
        "messages",
        "message_echoes",
        "messaging_postbacks",
        "message_deliveries",
        "message_reads",
        "message_reactions",
        "message_edits",
        "messaging_optins",
        "messaging_referrals",
        "messaging_handovers",
        "messaging_policy_enforcement",
        "messaging_account_linking",
        "standby",
        "feed",
    }
)


def routes(emu: MetaEmulator) -> list[Route]:
    async def me(request: Request) -> Response:
        def produce() -> dict[str, Any]:
            emu._fault("me")
            account = page_of(emu, emu._account_for(request))
            return {"id": account.id, "name": account.name}

        return emu._answer(produce)

    async def subscribed_apps(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(errors="replace")))
        return emu._answer(lambda: _subscribed_apps(emu, request, form))

    return [
        Route(f"{V}/me", me, methods=["GET"]),
        Route(f"{V}/{{page}}/subscribed_apps", subscribed_apps, methods=["GET", "POST"]),
    ]


def _subscribed_apps(emu: MetaEmulator, request: Request, form: dict[str, str]) -> dict[str, Any]:
    from bridge.sandbox.meta import MESSENGER, _GraphError

    page_id = request.path_params["page"]
    emu._fault("subscribed_apps")
    account = emu._account_for(request)
    page = emu.accounts.get(page_id)
    if page is None or page.platform != MESSENGER or not (page.id == account.id or emu._linked(account, page.id)):
        raise _GraphError(400, 100, f"Unsupported get request. Object with ID '{page_id}' does not exist", 33)
    if request.method == "GET":
        fields = emu.subscriptions.get(page_id)
        return {
            "data": []
            if fields is None
            else [
                {
                    "link": "https://www.facebook.com/games/?app_id=" + emu.app_id,
                    "name": "dmbridge sandbox",
                    "id": emu.app_id,
                    "subscribed_fields": list(fields),
                }
            ]
        }
    wanted = str(request.query_params.get("subscribed_fields") or form.get("subscribed_fields") or "")
    names = [f for f in wanted.split(",") if f]
    if not names or set(names) - PAGE_FIELDS:
        raise _GraphError(
            400, 100, "(#100) Param subscribed_fields must be one of {" + ", ".join(sorted(PAGE_FIELDS)) + "}"
        )
    emu.subscriptions[page_id] = names
    return {"success": True}


def page_of(emu: MetaEmulator, account: _Account) -> _Account:
    """A Page token's ``/me`` is the Page, also when it serves a linked Instagram account."""
    from bridge.sandbox.meta import MESSENGER

    if account.platform == MESSENGER:
        return account
    for other in emu.accounts.values():
        if other.platform == MESSENGER and other.token == account.token:
            return other
    return account
