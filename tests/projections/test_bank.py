"""The bank's fold (orderbank.projections.bank) of a generated launch: its figures match totals computed
independently from the raw log, and a policy moves positions, never money."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from orderbank.projections.bank import BankSettings, fold
from orderbank.projections.codec import Rejection, decode_obj
from orderbank.projections.policies import Fifo, HighTrimFirst
from orderbank.projections.schema import Snapshot
from orderbank.replay.synth import generate, preset


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return list(generate(preset("small"), seed=7))


def events_of(docs: list[dict[str, Any]]) -> list[Any]:
    events = [decode_obj(doc) for doc in docs]
    assert not [e for e in events if isinstance(e, Rejection)]
    return events


class Tally:
    """The log read plainly, with no projection code: per-order facts straight from the docs."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.placed: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.paid: Counter[str] = Counter()
        self.refund_due: Counter[str] = Counter()
        self.refunded: Counter[str] = Counter()
        self.demanded: Counter[str] = Counter()
        for doc in docs:
            oid, kind = doc["order_id"], doc["type"]
            if kind == "OrderPlaced":
                self.placed[oid] = doc
                self.status[oid] = "open"
                self.paid[oid] += doc["deposit"]["minor"]
            elif kind == "PaymentReceived":
                self.paid[oid] += doc["amount"]["minor"]
            elif kind == "PaymentDemanded":
                self.demanded[oid] += doc["amount"]["minor"]
            elif kind == "OrderCancelled":
                self.status[oid] = "cancelled"
                self.refund_due[oid] = doc["refund"]["minor"]
            elif kind == "RefundPaid":
                self.refunded[oid] += doc["amount"]["minor"]
            elif kind == "VehicleDelivered":
                self.status[oid] = "delivered"

    def of(self, status: str) -> list[str]:
        return [oid for oid, s in self.status.items() if s == status]


def test_launch_projections_match_independent_totals(docs: list[dict[str, Any]]) -> None:
    tally = Tally(docs)
    bank = fold(events_of(docs))
    assert (bank.applied, bank.duplicates, sum(bank.rejections.values())) == (len(docs), 0, 0)
    snap: Any = bank.snapshot()
    Snapshot.model_validate(snap)

    opened, cancelled, delivered = tally.of("open"), tally.of("cancelled"), tally.of("delivered")
    assert len(opened) > 500 and len(cancelled) > 300 and len(delivered) > 500  # a real mid-launch state

    deposits_open = sum(tally.placed[o]["deposit"]["minor"] for o in opened)
    paid_open = sum(tally.paid[o] for o in opened)
    owed = sum(tally.refund_due[o] - tally.refunded[o] for o in cancelled)
    totals = snap["pool"]["totals"]["CNY"]
    assert totals["open_orders"] == len(opened)
    assert totals["deposits"] == deposits_open
    assert totals["balances"] == paid_open - deposits_open
    assert totals["refunds_owed"] == owed
    assert totals["held"] == paid_open + owed
    assert totals["realised"] == sum(tally.paid[o] for o in delivered)
    assert totals["demanded_outstanding"] == sum(max(0, tally.demanded[o] - (tally.paid[o] - tally.placed[o]["deposit"]
                                                                               ["minor"])) for o in opened)

    overall = snap["cancellations"]["overall"]
    assert (overall["placed"], overall["cancelled"]) == (len(tally.placed), len(cancelled))
    by_trim = Counter(tally.placed[o]["trim"] for o in cancelled)
    launch_week = {c["trim"]: c for c in snap["cancellations"]["cohorts"] if c["cohort"] == "2025-W26"}
    week_orders = [o for o, d in tally.placed.items() if datetime.fromisoformat(d["placed_at"]).isocalendar()[1] == 26]
    assert launch_week["*"]["placed"] == len(week_orders)
    assert sum(c["cancelled"] for c in snap["cancellations"]["cohorts"] if c["trim"] != "*") == sum(by_trim.values())

    lane = snap["queue"]["lanes"]["YU7"]
    fifo = sorted(opened, key=lambda o: (tally.placed[o]["placed_at"], o))
    assert lane["open"] == len(opened)
    assert sorted(lane["positions"], key=lambda o: lane["positions"][o]["position"]) == fifo


def test_policy_changes_positions_not_money(docs: list[dict[str, Any]]) -> None:
    events = events_of(docs)
    fifo, high = fold(events, BankSettings(policy=Fifo())), fold(events, BankSettings(policy=HighTrimFirst()))
    a: Any = fifo.snapshot()
    b: Any = high.snapshot()
    assert a["pool"] == b["pool"] and a["cancellations"] == b["cancellations"]
    assert a["queue"]["lanes"]["YU7"]["positions"] != b["queue"]["lanes"]["YU7"]["positions"]
    first = min(b["queue"]["lanes"]["YU7"]["positions"].items(), key=lambda kv: kv[1]["position"])[0]
    assert high.orders[first].trim == "Max"
