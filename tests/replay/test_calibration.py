"""The yu7 preset reproduces the seed case's headline figures (docs/seed.md).

Checked on a tenth-size launch (30,000 orders): capacity scales with orders / 300,000 and every
share stays, so the counts scale by 0.1. Tolerances (full-size terms):
- orders on launch day: 289,000 within 1%;
- cars delivered in the first 30 days: 6,024 within 15%;
- cars delivered in the 30 days before 1 November: 40,000 within 15% (the article: 40,000+ in October);
- orders still open on 1 November: 140,000-150,000, widened by 5% either side;
- cancelled by 1 November: 19% within 1.5 percentage points;
- the balance is due 7 days after it is demanded;
- scalpers transfer 1-2% of slots.
"""

from __future__ import annotations

import orjson
import pytest

from orderbank.replay.calibration import headline
from orderbank.replay.load import load
from orderbank.replay.source import MemorySource
from orderbank.replay.synth import generate, preset

SCALE = 0.1


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    scenario = preset("yu7", orders=int(300_000 * SCALE))
    return headline(load(MemorySource(tuple(orjson.dumps(doc) for doc in generate(scenario, seed=1)))))


def test_launch_day_orders(figures: dict[str, float]) -> None:
    assert figures["launch_day_orders"] / SCALE == pytest.approx(289_000, rel=0.01)


def test_deliveries_ramp_from_six_thousand_to_forty_thousand_a_month(figures: dict[str, float]) -> None:
    assert figures["month_one_deliveries"] / SCALE == pytest.approx(6_024, rel=0.15)
    assert figures["last_month_deliveries"] / SCALE == pytest.approx(40_000, rel=0.15)


def test_backlog_and_cancellations_on_november_first(figures: dict[str, float]) -> None:
    assert 140_000 * 0.95 <= figures["open_at_cut"] / SCALE <= 150_000 * 1.05
    assert figures["cancelled_share_at_cut"] == pytest.approx(0.19, abs=0.015)


def test_seven_day_balance_demand_and_transfers(figures: dict[str, float]) -> None:
    assert figures["balance_due_days"] == 7.0
    assert 0.01 <= figures["transferred_share"] <= 0.02
