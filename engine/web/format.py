"""Figures as people read them: money with its currency and thousands separators, dates, "in about 9 months",
shares as percentages. Never minor units or microseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from orderbank.projections.orders import US_PER_DAY, from_micros

MINOR_DIGITS = {"JPY": 0, "KRW": 0}  # ISO 4217 exponents other than 2, of the currencies a maker may sell in
DAYS_PER_MONTH = 30.44
UNKNOWN = "\N{EN DASH}"  # a figure there is none of (yet)


def money(minor: int | float, currency: str) -> str:
    """`CNY 329,900` (cents shown only when there are some: `CNY 1,234.50`)."""
    digits = MINOR_DIGITS.get(currency, 2)
    major = minor / 10**digits
    text = f"{major:,.0f}" if major == int(major) else f"{major:,.{digits}f}"
    return f"{currency} {text}"


def money_short(major: float, currency: str) -> str:
    """Large sums in words a dashboard can hold: `CNY 1.3 bn`, `CNY 42.1 m`."""
    for limit, suffix in ((1e9, " bn"), (1e6, " m")):
        if abs(major) >= limit:
            return f"{currency} {major / limit:,.1f}{suffix}"
    return f"{currency} {major:,.0f}"


def count(value: int | float) -> str:
    return f"{value:,.0f}"


def share(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:.1%}"


def date(us: int | None) -> str:
    """`26 Jun 2025`."""
    if us is None:
        return UNKNOWN
    moment = from_micros(us)
    return f"{moment.day} {moment:%b %Y}"


def date_time(us: int | None) -> str:
    """`26 Jun 2025, 14:00 UTC`."""
    if us is None:
        return UNKNOWN
    moment = from_micros(us)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def iso_micros(text: str | None) -> int | None:
    """An ISO time as the views write it (`...Z`) in microseconds since the epoch."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def relative(us: int, now_us: int) -> str:
    """`in about 9 months`, `in 3 days`, `today`, `5 days ago`."""
    days = (us - now_us) / US_PER_DAY
    size = abs(days)
    if size < 1:
        return "today"
    if size < 45:
        words = f"{round(size)} day" + ("s" if round(size) != 1 else "")
    elif size < 550:
        words = f"about {round(size / DAYS_PER_MONTH)} months"
    else:
        years = size / 365.25
        words = f"about {years:.0f} years" if years >= 2 else f"about {years:.1f} years"
    return f"in {words}" if days > 0 else f"{words} ago"


def duration_days(days: float | None) -> str:
    """`about 9 months`, `12 days`; a dash when unknown."""
    if days is None:
        return UNKNOWN
    if days < 1:
        return "less than a day"
    return relative(round(days * US_PER_DAY), 0).removeprefix("in ")
