"""Per-channel pacing of Slack posts (token bucket), pure given a clock."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Pacer:
    """``rate`` posts per second per key with bursts of ``burst``; ``pause`` obeys a Retry-After."""

    rate: float
    burst: int
    _tokens: dict[str, float] = field(default_factory=dict)
    _stamp: dict[str, float] = field(default_factory=dict)
    _paused: dict[str, float] = field(default_factory=dict)

    def wait(self, key: str, now: float) -> float:
        """Seconds until a post to ``key`` may go (0 when it may go now)."""
        if self.rate <= 0:
            return 0.0
        paused = self._paused.get(key, 0.0) - now
        tokens = self._refill(key, now)
        need = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        return max(paused, need, 0.0)

    def take(self, key: str, now: float) -> None:
        if self.rate <= 0:
            return
        self._tokens[key] = self._refill(key, now) - 1

    def pause(self, key: str, until: float) -> None:
        self._paused[key] = max(self._paused.get(key, 0.0), until)
        self._tokens[key] = 0.0

    def tracked(self) -> int:
        """How many keys hold state (callers keyed by something unbounded reset past a size)."""
        return len(self._stamp)

    def _refill(self, key: str, now: float) -> float:
        last = self._stamp.get(key, now)
        tokens = min(float(self.burst), self._tokens.get(key, float(self.burst)) + (now - last) * self.rate)
        self._tokens[key], self._stamp[key] = tokens, now
        return tokens
