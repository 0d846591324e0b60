"""Leads (pure): stages, money as typed by agents, what the card and lists show, the CRM's payload.

A lead's value is kept as an integer in the currency's minor units (``1200 EUR`` → ``120000``; yen have none,
dinars three), so sums are exact and a value never passes through a float. Absurd input is refused with the
reason: a negative value, more than ``MAX_MAJOR`` in major units, more decimals than the currency has, a
currency that is not ISO 4217, a stage that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

STAGES = ("new", "qualified", "meeting", "won", "lost")
STAGE_EMOJI = {"new": ":seedling:", "qualified": ":dart:", "meeting": ":handshake:", "won": ":trophy:", "lost": ":x:"}
MAX_MAJOR = 10**12
"""The largest value, in major units (a trillion euros is a typo, not a lead)."""

# ISO 4217 active codes and their minor units (the exceptions to 2; the rest of the list has 2)
_MINOR_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_MINOR_3 = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_4 = "CLF UYW"
_MINOR_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CNY "
    "COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS "
    "INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR "
    "MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UZS VES WST XCD YER ZAR ZMW ZWL"
)
MINOR_UNITS: dict[str, int] = {
    **{c: 2 for c in _MINOR_2.split()},
    **{c: 0 for c in _MINOR_0.split()},
    **{c: 3 for c in _MINOR_3.split()},
    **{c: 4 for c in _MINOR_4.split()},
}
_AMOUNT = re.compile(r"^[0-9][0-9_,]*(\.[0-9]+)?$")
USAGE = (
    "Usage: `lead [new|qualified|meeting|won|lost] [VALUE CURRENCY]`, e.g. `lead qualified 1200 EUR` "
    "(in the channel: `/dm lead 12 won 1500 EUR`)."
)


class LeadError(ValueError):
    """Input that is not a lead change; ``str(error)`` says why, for the person who typed it."""


@dataclass(frozen=True)
class LeadChange:
    """What an agent asked for: a stage and/or a value (None: keep what the lead has; a new lead is ``new``)."""

    stage: str | None = None
    value_minor: int | None = None
    currency: str | None = None


def parse_money(amount: str, currency: str) -> tuple[int, str]:
    """``("1,200.50", "eur")`` → ``(120050, "EUR")``; refuses what is not a sensible amount of a real currency."""
    code = currency.upper()
    if code not in MINOR_UNITS:
        raise LeadError(f"`{currency[:12]}` is not a currency code (ISO 4217, like EUR, USD, JPY)")
    text = amount.strip()
    if text.startswith("-"):
        raise LeadError("A lead's value cannot be negative")
    if len(text) > 40 or not _AMOUNT.match(text):
        raise LeadError(f"`{text[:40]}` is not an amount (digits, optionally with a decimal point: 1200 or 1200.50)")
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation as exc:  # the pattern leaves nothing Decimal refuses; kept for safety
        raise LeadError(f"`{text[:40]}` is not an amount") from exc
    if value > MAX_MAJOR:
        raise LeadError(f"{text[:40]} {code} is more than a lead can be worth here (at most {MAX_MAJOR:,})")
    exponent = MINOR_UNITS[code]
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise LeadError(f"{code} has {exponent} decimal places; {text[:40]} has more")
    return int(minor), code


def parse_change(args: list[str]) -> LeadChange:
    """The words after ``lead``: ``[]``, ``[stage]``, ``[value, currency]`` or ``[stage, value, currency]``."""
    stage = None
    rest = list(args)
    if rest and not rest[0][:1].isdigit() and not rest[0].startswith(("-", ".")):
        word = rest.pop(0).lower()
        if word not in STAGES:
            raise LeadError(f"`{word[:24]}` is not a lead stage (one of {', '.join(STAGES)}). " + USAGE)
        stage = word
    if not rest:
        return LeadChange(stage)
    if len(rest) != 2:
        raise LeadError(USAGE)
    value, currency = parse_money(rest[0], rest[1])
    return LeadChange(stage, value, currency)


def format_money(value_minor: int | None, currency: str | None) -> str:
    """``(120050, "EUR")`` → ``"1,200.50 EUR"``; "" when there is no value."""
    if value_minor is None or currency is None:
        return ""
    exponent = MINOR_UNITS.get(currency, 2)
    major = Decimal(value_minor).scaleb(-exponent)
    return f"{major:,.{exponent}f} {currency}"


def lead_label(stage: str, value_minor: int | None, currency: str | None) -> str:
    """What the card and ``/dm list leads`` show: ``:dart: qualified · 1,200.00 EUR``."""
    money = format_money(value_minor, currency)
    return f"{STAGE_EMOJI.get(stage, '')} {stage}".strip() + (f" · {money}" if money else "")


def crm_payload(
    *,
    event_id: str,
    lead: dict[str, Any],
    customer: dict[str, Any],
    conversation: dict[str, Any],
    thread_link: str | None,
    transcript: list[dict[str, Any]],
) -> dict[str, Any]:
    """The JSON body POSTed to ``[crm] url`` (README, "Leads and the CRM hand-off")."""
    return {
        "event": "lead.stage_changed",
        "event_id": event_id,
        "lead": lead,
        "stage": lead["stage"],
        "customer": customer,
        "conversation": conversation,
        "thread_link": thread_link,
        "transcript": transcript,
    }
