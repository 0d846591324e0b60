"""The X and Meta checks of ``dmbridge doctor`` (see :mod:`bridge.doctor`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from urllib.parse import quote

import httpx

from bridge.config import Settings
from bridge.doctor import Check
from bridge.domain import Platform
from bridge.errors import AuthFailed, DeliveryError
from bridge.store.db import Database
from bridge.toml_config import FileConfig
from connectors.meta.graph import Graph

OAUTH1_FIX = (
    "check X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET (app permission "
    "Read, Write and Direct Messages; regenerate the access token after changing the permission)"
)
# Messenger sends the Page's own messages as a separate field; Instagram includes them in `messages`.
PAGE_FIELDS = ("messages", "message_echoes")
# Graph API versions and the day each stops working (Meta's changelog, "Available Graph API Versions").
GRAPH_EXPIRES = {
    "v20.0": date(2026, 9, 24),
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 20),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
}
WARN_DAYS = 90


# ---------------------------------------------------------------------------------------------- X


def _database(settings: Settings) -> Database:
    return Database(settings.database_url)


def x_credentials(settings: Settings) -> Check:
    """``GET /2/users/me`` through the connector the bridge builds (stored OAuth 2.0 tokens, refreshed when due,
    or OAuth 1.0a keys, or a static user token)."""
    from bridge.wiring import x_token_store
    from connectors.x.connector import XConnector

    db = _database(settings) if settings.x_oauth2_refreshing else None
    x = XConnector(
        base_url=settings.x_api_url,
        consumer_key=settings.x_consumer_key,
        consumer_secret=settings.x_consumer_secret,
        access_token=settings.x_access_token,
        access_token_secret=settings.x_access_token_secret,
        user_bearer_token=settings.x_user_bearer_token,
        timeout=settings.dmbridge_http_timeout,
        tokens=x_token_store(settings, db) if db is not None else None,
    )
    oauth1 = all(
        (settings.x_consumer_key, settings.x_consumer_secret, settings.x_access_token, settings.x_access_token_secret)
    )
    name = "X credentials"
    try:
        x.start()
    except AuthFailed as exc:
        fix = (
            OAUTH1_FIX
            if oauth1
            else (
                "run `dmbridge x-auth` to authorize again"
                if db is not None
                else "X_USER_BEARER_TOKEN is expired or revoked (OAuth 2.0 user tokens last "
                "2 hours): set X_CLIENT_ID and run `dmbridge x-auth`, or use OAuth 1.0a"
            )
        )
        return Check(name, False, exc.reason, fix)
    except (DeliveryError, ValueError, KeyError) as exc:
        return Check(
            name,
            False,
            f"GET /2/users/me failed: {getattr(exc, 'reason', type(exc).__name__)}",
            "check X_API_URL and X's status; run doctor again",
        )
    except Exception as exc:  # the token table unreadable: an unmigrated database
        return Check(
            name,
            False,
            f"could not read the stored X tokens: {type(exc).__name__}",
            "run `dmbridge migrate`, then `dmbridge x-auth`",
        )
    finally:
        if db is not None:
            db.dispose()
    mode = "OAuth 1.0a" if oauth1 else "OAuth 2.0 (refreshed)" if db is not None else "OAuth 2.0"
    return Check(name, True, f"{mode} user context of @{x.account} ({x.user_id})")


def x_oauth2_freshness(settings: Settings, now: float | None = None) -> Check | None:
    """OAuth 2.0 token freshness. OAuth 1.0a tokens do not expire (no row). Stored tokens (``X_CLIENT_ID``):
    the token store's own status. A static ``X_USER_BEARER_TOKEN`` cannot be refreshed and X expires it 2 hours
    after issue: ❌. ``run(x_token_status=…)`` can replace this function."""
    from bridge.wiring import x_token_store

    name = "X OAuth 2.0 token"
    if settings.x_oauth2_refreshing:
        db = _database(settings)
        try:
            ok, line = x_token_store(settings, db).token_status(time.time() if now is None else now)
        except Exception as exc:  # no token table yet
            return Check(
                name,
                False,
                f"could not read the stored tokens: {type(exc).__name__}",
                "run `dmbridge migrate`, then `dmbridge x-auth`",
            )
        finally:
            db.dispose()
        return Check(name, ok, line, "" if ok else "run `dmbridge x-auth`")
    oauth1 = all(
        (settings.x_consumer_key, settings.x_consumer_secret, settings.x_access_token, settings.x_access_token_secret)
    )
    if oauth1 or not settings.x_user_bearer_token:
        return None
    return Check(
        name,
        False,
        "X_USER_BEARER_TOKEN is a static OAuth 2.0 user token: X expires it 2 hours after "
        "issue and dmbridge cannot refresh it",
        "set X_CLIENT_ID and run `dmbridge x-auth` (tokens refreshed automatically), or use OAuth 1.0a "
        "credentials, which do not expire",
    )


def app_bearer(settings: Settings, client: httpx.Client) -> str:
    """X's app-only bearer token for the consumer key and secret (client-credentials grant)."""
    resp = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(quote(settings.x_consumer_key, safe=""), quote(settings.x_consumer_secret, safe="")),
    )
    if resp.status_code != 200:
        raise AuthFailed(f"POST /oauth2/token answered {resp.status_code}")
    return str(resp.json()["access_token"])


def x_webhook(settings: Settings, public_url: str | None) -> Check:
    """``GET /2/webhooks`` (app bearer token): a valid registration of our ``/webhooks/x``."""
    name = "X webhook"
    wanted = f"{public_url.rstrip('/')}/webhooks/x" if public_url else None
    register = (
        f"register {wanted or 'https://<your host>/webhooks/x'} with POST /2/webhooks (app bearer token), "
        "then subscribe the brand account (README: X webhooks)"
    )
    if not (settings.x_consumer_key and settings.x_consumer_secret):
        return Check(
            name,
            False,
            "X_WEBHOOKS=true needs X_CONSUMER_KEY and X_CONSUMER_SECRET",
            "set both (developer portal → Keys and tokens → API Key and Secret)",
        )
    try:
        with httpx.Client(base_url=settings.x_api_url.rstrip("/"), timeout=settings.dmbridge_http_timeout) as c:
            bearer = app_bearer(settings, c)
            resp = c.get("/2/webhooks", headers={"Authorization": f"Bearer {bearer}"})
    except AuthFailed as exc:
        return Check(name, False, f"X refused the consumer key and secret ({exc.reason})", OAUTH1_FIX)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return Check(
            name, False, f"could not read the registrations: {type(exc).__name__}", "check X_API_URL; run doctor again"
        )
    if resp.status_code != 200:
        return Check(name, False, f"GET /2/webhooks answered {resp.status_code}", OAUTH1_FIX)
    hooks = [
        h
        for h in resp.json().get("data") or []
        if (h.get("url") == wanted if wanted else str(h.get("url", "")).endswith("/webhooks/x"))
    ]
    if not hooks:
        return Check(name, False, f"no webhook registered for {wanted or '…/webhooks/x'}", register)
    good = [h for h in hooks if h.get("valid")]
    if not good:
        return Check(
            name,
            False,
            f"{hooks[0]['url']} is registered but X marked it invalid (CRC failed)",
            f"make sure it answers X's CRC, then PUT /2/webhooks/{hooks[0].get('id')} to re-validate",
        )
    return Check(name, True, f"{good[0]['url']} registered and valid (id {good[0].get('id')})")


def x_checks(
    settings: Settings, public_url: str | None, token_status: Callable[[Settings], Check | None]
) -> list[Check]:
    results = [x_credentials(settings)]
    fresh = token_status(settings)
    if fresh is not None:
        results.append(fresh)
    if settings.x_webhooks:
        results.append(x_webhook(settings, public_url))
    if settings.x_chat:
        from bridge.doctor_x_chat import x_chat_checks

        results += x_chat_checks(settings)
    return results


# ---------------------------------------------------------------------------------------------- Meta


def graph_version(settings: Settings, today: date) -> Check:
    name = "Meta Graph version"
    found = re.search(r"/(v\d+\.\d+)(?:/|$)", settings.meta_graph_url)
    if found is None:
        return Check(
            name,
            False,
            f"META_GRAPH_URL has no version ({settings.meta_graph_url})",
            "end META_GRAPH_URL with a version, e.g. https://graph.facebook.com/v26.0",
        )
    version = found.group(1)
    expires = GRAPH_EXPIRES.get(version)
    if expires is not None and (expires - today).days < WARN_DAYS:
        when = "stopped working" if expires <= today else "stops working"
        return Check(
            name,
            False,
            f"{version} {when} on {expires.isoformat()}",
            "set META_GRAPH_URL to a current version, e.g. https://graph.facebook.com/v26.0",
        )
    return Check(name, True, version + (f" (usable until {expires.isoformat()})" if expires else ""))


def meta_tokens(settings: Settings, file: FileConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variable name → token, for every Page token the bridge would use."""
    tokens = {"META_PAGE_ACCESS_TOKEN": settings.meta_page_access_token} if settings.meta_page_access_token else {}
    for page in file.meta.pages:
        if page.token_env:
            tokens[page.token_env] = environ.get(page.token_env, "")
    return tokens


def meta_token(graph: Graph, env: str, token: str) -> tuple[Check, str | None]:
    """``GET /me`` with a Page token: the Page it belongs to."""
    name = f"Meta token {env}"
    if not token:
        return Check(name, False, f"{env} is not set", f"set {env} to the Page access token"), None
    try:
        page = graph.get(Platform.MESSENGER, "me", token)
    except DeliveryError as exc:
        return Check(
            name,
            False,
            exc.reason,
            "generate a new Page access token (Messenger → Settings → Access "
            "Tokens) with pages_messaging, pages_manage_metadata (and instagram_basic, "
            "instagram_manage_messages for Instagram)",
        ), None
    return Check(name, True, f"Page {page.get('name', '?')} ({page.get('id')})"), str(page.get("id", ""))


def meta_fields(graph: Graph, page_id: str, token: str, app_id: str) -> Check:
    """``GET /{page-id}/subscribed_apps``: our app receives the webhook fields the bridge needs."""
    name = f"Meta Page {page_id} webhooks"
    subscribe = (
        f"POST /{page_id}/subscribed_apps?subscribed_fields={','.join(PAGE_FIELDS)} with the Page "
        "token (needs pages_manage_metadata); Instagram DMs, and their echoes, arrive with `messages`"
    )
    try:
        data = graph.get(Platform.MESSENGER, f"{page_id}/subscribed_apps", token).get("data") or []
    except DeliveryError as exc:
        return Check(
            name,
            False,
            f"subscribed_apps failed: {exc.reason}",
            "the Page token needs pages_manage_metadata and pages_show_list",
        )
    ours = next((a for a in data if str(a.get("id")) == app_id), None)
    if ours is None:
        return Check(name, False, "our app is not subscribed to the Page", subscribe)
    missing = [f for f in PAGE_FIELDS if f not in (ours.get("subscribed_fields") or [])]
    if missing:
        return Check(name, False, "not subscribed to " + ", ".join(missing), subscribe)
    return Check(name, True, "subscribed to " + ", ".join(PAGE_FIELDS))


def meta_checks(
    settings: Settings, file: FileConfig, environ: Mapping[str, str], today: date | None = None
) -> list[Check]:
    results = [graph_version(settings, today or datetime.fromtimestamp(time.time(), UTC).date())]
    if not settings.meta_verify_token:
        results.append(
            Check(
                "Meta verify token",
                False,
                "META_VERIFY_TOKEN is not set",
                "choose one and enter the same value as the webhook's Verify Token",
            )
        )
    graph = Graph(settings.meta_graph_url, timeout=settings.dmbridge_http_timeout)
    try:
        pages: dict[str, str] = {}
        for env, token in meta_tokens(settings, file, environ).items():
            check, page_id = meta_token(graph, env, token)
            results.append(check)
            if page_id:
                pages.setdefault(page_id, token)
        if not pages:
            return results
        try:
            app_id = str(graph.get(Platform.MESSENGER, "app", next(iter(pages.values()))).get("id", ""))
        except DeliveryError as exc:
            return [*results, Check("Meta app", False, f"GET /app failed: {exc.reason}", "check the Page token")]
        results += [meta_fields(graph, page_id, token, app_id) for page_id, token in pages.items()]
        return results
    finally:
        graph.close()
