"""The base of the outbox's typed deliveries (``bridge.deliveries`` has the set): keys, lanes, targets, receipts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

Target = Literal["slack", "platform"]
OK, WAITING, WARNING = "white_check_mark", "hourglass_flowing_sand", "warning"  # the receipts' emoji names


Cause = tuple[str | int | float, ...]
"""What a notice or a redraw is about, e.g. ``("line", audit_id)``: its key, so the same cause adds it once."""
Source = tuple[str, str, str]
"""A platform message: its (platform, account, remote id)."""


def cause_key(cause: Cause) -> str:
    return ":".join(str(part) for part in cause)


def slack_lane(conversation_id: int) -> str:
    return f"s:{conversation_id}"


def platform_lane(conversation_id: int) -> str:
    return f"p:{conversation_id}"


@dataclass(frozen=True)
class Delivery:
    """Common to every delivery: its dedupe key and, where it has one, its conversation."""

    key: str
    conversation_id: int | None

    kind: ClassVar[str]
    target: ClassVar[Target] = "slack"

    @property
    def lane(self) -> str:
        assert self.conversation_id is not None, f"{self.kind} needs a conversation"
        return slack_lane(self.conversation_id)

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        del data["key"], data["conversation_id"]
        return data
