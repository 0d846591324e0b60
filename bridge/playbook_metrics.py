"""The metrics the DM guides name (pure): response times, resolution rate, CSAT, DM-to-sale conversion, each by
platform, inquiry type and agent.

Definitions (README, "Metrics"): first- and next-response times are the medians of the spans that ended in the
period (``bridge.reports``); the resolution rate is, of the conversations opened in the period, the share that
is resolved now; CSAT is the scores answered in the period (average and count per score); conversion is, of
the leads created in the period, the share won, and the value won per currency (exact: minor units).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from bridge.leads import format_money

DIMENSIONS = ("platform", "type", "agent")


@dataclass(frozen=True)
class Facts:
    """One conversation as the metrics see it."""

    platform: str
    inquiry_type: str | None
    agent: str | None
    opened: bool  # created in the period
    resolved: bool  # resolved now
    first_response: tuple[float, ...] = ()
    next_response: tuple[float, ...] = ()
    csat: tuple[int, ...] = ()
    lead_stage: str | None = None  # a lead created in the period
    lead_value: int | None = None
    lead_currency: str | None = None

    def key(self, dimension: str) -> str:
        if dimension == "platform":
            return self.platform
        if dimension == "type":
            return self.inquiry_type or "untyped"
        return self.agent or "unassigned"


@dataclass
class Figures:
    first_response: list[float] = field(default_factory=list)
    next_response: list[float] = field(default_factory=list)
    opened: int = 0
    resolved: int = 0
    csat: Counter[int] = field(default_factory=Counter)
    leads: int = 0
    won: int = 0
    value_won: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, f: Facts) -> None:
        self.first_response += f.first_response
        self.next_response += f.next_response
        self.opened += f.opened
        self.resolved += f.opened and f.resolved
        self.csat.update(s for s in f.csat if 1 <= s <= 5)
        if f.lead_stage is not None:
            self.leads += 1
            if f.lead_stage == "won":
                self.won += 1
                if f.lead_value is not None and f.lead_currency:
                    self.value_won[f.lead_currency] += f.lead_value

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.opened if self.opened else None

    @property
    def csat_average(self) -> float | None:
        total = sum(self.csat.values())
        return sum(s * n for s, n in self.csat.items()) / total if total else None

    @property
    def conversion(self) -> float | None:
        return self.won / self.leads if self.leads else None


def compute(facts: list[Facts]) -> dict[str, dict[str, Figures]]:
    """``{"all": {"all": …}, "platform": {"x": …}, "type": {…}, "agent": {…}}``."""
    out: dict[str, dict[str, Figures]] = {"all": {"all": Figures()}}
    for f in facts:
        out["all"]["all"].add(f)
        for dim in DIMENSIONS:
            out.setdefault(dim, {}).setdefault(f.key(dim), Figures()).add(f)
    return out


def _minutes(values: list[float]) -> str:
    return f"{statistics.median(values) / 60:.0f}m" if values else "—"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _money(value_won: dict[str, int]) -> str:
    return ", ".join(format_money(v, c) for c, v in sorted(value_won.items())) or "0"


def summary(fig: Figures, with_csat: bool) -> str:
    parts = [
        f"first response {_minutes(fig.first_response)}",
        f"next response {_minutes(fig.next_response)}",
        f"resolved {_pct(fig.resolution_rate)} of {fig.opened} opened",
    ]
    if with_csat:
        avg = fig.csat_average
        dist = " ".join(f"{s}★×{fig.csat[s]}" for s in range(1, 6) if fig.csat[s])
        parts.append("CSAT —" if avg is None else f"CSAT {avg:.1f}/5 ({dist})")
    parts.append(f"leads {fig.leads}, won {fig.won} ({_pct(fig.conversion)}), value won {_money(fig.value_won)}")
    return " · ".join(parts)


def render_text(figures: dict[str, dict[str, Figures]], with_csat: bool) -> str:
    """For Slack (mrkdwn) and the terminal."""
    lines = ["*The DM playbook*", "All: " + summary(figures["all"]["all"], with_csat)]
    for dim in DIMENSIONS:
        for name, fig in sorted(figures.get(dim, {}).items()):
            who = f"<@{name}>" if dim == "agent" and name.startswith(("U", "W")) else name
            lines.append(f"By {dim} {who}: " + summary(fig, with_csat))
    return "\n".join(lines)


CSV_FIELDS = (
    "dimension",
    "group",
    "first_response_median_s",
    "next_response_median_s",
    "opened",
    "resolved",
    "resolution_rate",
    "csat_average",
    "csat_1",
    "csat_2",
    "csat_3",
    "csat_4",
    "csat_5",
    "leads",
    "won",
    "conversion",
    "value_won",
)


def render_csv(figures: dict[str, dict[str, Figures]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for dim, groups in figures.items():
        for name, fig in sorted(groups.items()):
            writer.writerow(
                [
                    dim,
                    name,
                    round(statistics.median(fig.first_response)) if fig.first_response else "",
                    round(statistics.median(fig.next_response)) if fig.next_response else "",
                    fig.opened,
                    fig.resolved,
                    "" if fig.resolution_rate is None else f"{fig.resolution_rate:.4f}",
                    "" if fig.csat_average is None else f"{fig.csat_average:.2f}",
                    *(fig.csat[s] for s in range(1, 6)),
                    fig.leads,
                    fig.won,
                    "" if fig.conversion is None else f"{fig.conversion:.4f}",
                    ";".join(f"{v} {c}" for c, v in sorted(fig.value_won.items())),
                ]
            )
    return out.getvalue()
