"""Pieces of the X emulator: problem documents, rate-limit windows, injected faults, ids and pagination tokens."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

BRAND_ID = "1460987654321098752"
NOT_PERMITTED = "You are not permitted to send Direct Messages to this user."
DEFAULT_USER_FIELDS = ("id", "name", "username")


@dataclass
class Fault:
    status: int
    reset_in: float
    daily: bool
    delay: float


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers or {}
        self.body = body or {"title": title, "detail": detail, "type": "about:blank", "status": status}


class Window:
    """A fixed rate-limit window as X reports it in ``x-rate-limit-*`` headers."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self.used, self.reset = 0, 0.0

    def take(self, now: float) -> bool:
        if now >= self.reset:
            self.used, self.reset = 0, now + self.seconds
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, prefix: str = "x-rate-limit") -> dict[str, str]:
        return {
            f"{prefix}-limit": str(self.limit),
            f"{prefix}-remaining": str(max(0, self.limit - self.used)),
            f"{prefix}-reset": str(int(self.reset)),
        }


def fault_problem(fault: Fault) -> Problem:
    reset = str(int(time.time() + fault.reset_in))
    if fault.status == 429:
        headers = {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
        if fault.daily:
            headers |= {
                "x-user-limit-24hour-limit": "1440",
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": reset,
                "x-rate-limit-remaining": "14",
            }
        return Problem(429, "Too Many Requests", "Too Many Requests", headers)
    if fault.status == 401:
        return Problem(401, "Unauthorized", "Unauthorized")
    if fault.status == 403:
        return Problem(403, "Forbidden", NOT_PERMITTED)
    return Problem(
        fault.status,
        "Service Unavailable" if fault.status == 503 else "Server Error",
        "Service Unavailable" if fault.status == 503 else "Internal Error",
    )


def conversation_id(a: str, b: str) -> str:
    low, high = sorted((a, b), key=int)
    return f"{low}-{high}"


def fields_of(requested: str | None, default: tuple[str, ...]) -> set[str]:
    return set(default) | {f for f in (requested or "").split(",") if f}


def pick(obj: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k in fields}


def encode_token(event_id: int) -> str:
    return base64.b32encode(f"older:{event_id}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int | None:
    try:
        raw = base64.b32decode(token + "=" * (-len(token) % 8)).decode()
        return int(raw.removeprefix("older:")) if raw.startswith("older:") else None
    except (ValueError, UnicodeDecodeError):
        return None


def invalid(detail: str) -> Problem:
    return Problem(
        400,
        "Invalid Request",
        detail,
        body={
            "errors": [{"message": detail}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.x.com/2/problems/invalid-request",
        },
    )
