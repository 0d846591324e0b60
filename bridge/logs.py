"""Logging for ``dmbridge serve``: one line per record, nothing from outside able to start a new line,
no request bodies; ``DMBRIDGE_LOG_FORMAT=json`` for log shippers (one JSON object per line)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

QUIET = {
    # bolt logs the whole body of every request whose signature fails, at INFO; bridge.http logs a fixed line
    "slack_bolt.RequestVerification": logging.WARNING,
    # one INFO line per job run (pollers, sweeps, recovery: tens of thousands a day)
    "apscheduler.executors.default": logging.WARNING,
    "apscheduler.scheduler": logging.WARNING,
}


_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, 0x85] if c != 0x09} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\\"): "\\\\",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape(text: str) -> str:
    """Line breaks and other control characters made visible (``\\n``, ``\\x1b`` …), so a logged value can
    neither forge a log line nor send terminal escapes."""
    return text.translate(_ESCAPES)


class LineFormatter(logging.Formatter):
    """The usual text format; the message (and a traceback) on the one line, escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)  # json escapes every control character


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    if kind in ("", "text"):
        return LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise ValueError(f"DMBRIDGE_LOG_FORMAT must be text or json, not {kind!r}")


def configure(verbose: bool, kind: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet()


def quiet() -> None:
    """Raise the noisy loggers. bolt copies the root level onto its loggers when an App is built, so this
    runs again after each build."""
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
