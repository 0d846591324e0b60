"""The X Chat checks of ``dmbridge doctor``: the sealed identity opens, X holds its public key, today's spend."""

from __future__ import annotations

import time

from bridge import x_chat_keys, x_costs
from bridge.config import Settings
from bridge.doctor import Check
from bridge.errors import ConfigError, DeliveryError
from bridge.store.db import Database
from connectors.xchat.api import ChatApi
from connectors.xchat.crypto import Identity

KEYS_FIX = "set DMBRIDGE_SECRET_KEY (`dmbridge x-chat keygen` makes one) and run `dmbridge x-chat setup`"


def x_chat_checks(settings: Settings, now: float | None = None) -> list[Check]:
    from bridge.wiring import x_chat_api

    db = Database(settings.database_url)
    try:
        results = []
        try:
            identity = x_chat_keys.load(db, settings.dmbridge_secret_key)
        except ConfigError as exc:
            results.append(Check("X Chat keys", False, str(exc), KEYS_FIX))
        else:
            results.append(
                Check("X Chat keys", True, f"identity of user {identity.user_id}, key version {identity.key_version}")
            )
            results.append(registered(identity, x_chat_api(settings, db)))
        results.append(spend(db, settings.x_daily_budget_usd, time.time() if now is None else now))
        return results
    finally:
        db.dispose()


def registered(identity: Identity, api: ChatApi) -> Check:
    """X still holds our public key under our version (a new `x-chat setup` elsewhere would replace it)."""
    name = "X Chat public key at X"
    try:
        keys = api.public_keys(identity.user_id)
    except DeliveryError as exc:
        return Check(name, False, f"X could not be asked: {exc.reason}", "check the X credential (above)")
    ours = [k for k in keys if k.get("public_key_version") == identity.key_version]
    with identity.lock:
        same = bool(ours) and identity.chat.matches_registered_key(str(ours[0].get("public_key") or ""))
    if not same:
        return Check(
            name,
            False,
            f"X has no public key {identity.key_version} of ours (versions: "
            + ", ".join(str(k.get("public_key_version")) for k in keys)
            + ")",
            "run `dmbridge x-chat setup --replace` (customers' apps then set up new conversation keys)",
        )
    return Check(name, True, f"registered as version {identity.key_version}")


def spend(db: Database, budget: float, now: float) -> Check:
    try:
        with db.read() as s:
            counts = x_costs.today(s, now)
    except Exception as exc:  # no usage table before the first migration
        return Check("X spend today", False, f"could not read x_usage: {type(exc).__name__}", "run `dmbridge migrate`")
    spent = x_costs.estimate(counts)
    detail = f"about ${spent:.2f} today (UTC)" + (f" of a ${budget:.2f} budget" if budget > 0 else "")
    calls = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(counts.items()))
    detail += f"; {calls}" if calls else "; no calls counted yet"
    if budget > 0 and spent > budget:
        return Check(
            "X spend today", False, detail, "raise X_DAILY_BUDGET_USD, or reconcile less often (X_RECONCILE_SECONDS)"
        )
    return Check("X spend today", True, detail)
