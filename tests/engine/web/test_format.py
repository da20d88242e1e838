"""Figures as people read them."""

from __future__ import annotations

from orderbank.engine.web import format as fmt
from orderbank.projections.orders import US_PER_DAY, micros
from tests.support.factories import T0


def test_money_has_its_currency_and_thousands_separators_never_minor_units() -> None:
    assert fmt.money(32_990_000, "CNY") == "CNY 329,900"
    assert fmt.money(123_450, "CNY") == "CNY 1,234.50"
    assert fmt.money(0, "CNY") == "CNY 0"
    assert fmt.money(5_000, "JPY") == "JPY 5,000"
    assert fmt.money_short(1_327_000_000, "CNY") == "CNY 1.3 bn" and fmt.money_short(42_100_000, "CNY") == "CNY 42.1 m"


def test_dates_and_times_are_written_out_in_utc() -> None:
    assert fmt.date(micros(T0)) == "26 Jun 2025"
    assert fmt.date_time(micros(T0)) == "26 Jun 2025, 14:00 UTC"
    assert fmt.date(None) == fmt.UNKNOWN
    assert fmt.iso_micros("2025-06-26T14:00:00Z") == micros(T0)
    assert fmt.iso_micros("2025-06-26T14:00:00.000005Z") == micros(T0) + 5


def test_relative_times_read_like_speech() -> None:
    now = micros(T0)
    day = US_PER_DAY
    assert fmt.relative(now + 270 * day, now) == "in about 9 months"
    assert fmt.relative(now + 3 * day, now) == "in 3 days"
    assert fmt.relative(now + day, now) == "in 1 day"
    assert fmt.relative(now + day // 2, now) == "today"
    assert fmt.relative(now - 5 * day, now) == "5 days ago"
    assert fmt.relative(now + 1000 * day, now) == "in about 3 years"
    assert fmt.relative(now + 600 * day, now) == "in about 1.6 years"
    assert fmt.duration_days(120) == "about 4 months" and fmt.duration_days(0.2) == "less than a day"
    assert fmt.duration_days(None) == fmt.UNKNOWN


def test_shares_and_counts() -> None:
    assert fmt.share(0.1734) == "17.3%" and fmt.share(None) == fmt.UNKNOWN
    assert fmt.count(289_000) == "289,000"
