"""Laws of the fold, over random valid histories (hypothesis).

Determinism; any interleaving of different orders' events gives the same projections;
positions in every lane are exactly 1..n in policy-key order; the pool is the sum of the
orders' contributions; duplicates change nothing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbank.projections.bank import BankSettings, OrderBank, canonical, fold
from orderbank.projections.events import Event
from orderbank.projections.orders import Status
from orderbank.projections.policies import BoundedOvertake, Fifo, HighTrimFirst, PaidFirst, Policy
from orderbank.projections.pool import FIGURES, bucket_of, contribution
from tests.support import factories as f

POLICIES: list[Policy] = [Fifo(), HighTrimFirst(), PaidFirst(), BoundedOvertake(k=2)]
PRICE, DEPOSIT = 1_000_000, 100_000


@st.composite
def order_history(draw: st.DrawFn, order_id: str) -> list[Event]:
    """One order's legal life: placement, some payments and transfers, maybe an end."""
    day = draw(st.integers(0, 20)) / 2
    rank = draw(st.integers(0, 2))
    events: list[Event] = [f.placed(order_id, day, rank=rank, trim=("Standard", "Pro", "Max")[rank],
                                    price=PRICE, deposit=DEPOSIT, model=draw(st.sampled_from(["YU7", "SU7"])))]
    paid = DEPOSIT
    for _ in range(draw(st.integers(0, 3))):
        day += draw(st.integers(1, 10))
        seq = len(events) + 1
        kind = draw(st.sampled_from(["demand", "pay", "transfer"]))
        if kind == "demand":
            events.append(f.demanded(order_id, seq, day, PRICE - DEPOSIT, due_days=draw(st.integers(0, 10))))
        elif kind == "pay":
            amount = draw(st.sampled_from([PRICE - DEPOSIT, (PRICE - DEPOSIT) // 2]))
            paid += amount
            events.append(f.received(order_id, seq, day, amount))
        else:
            events.append(f.transferred(order_id, seq, day))
    end = draw(st.sampled_from(["open", "deliver", "cancel"]))
    day += draw(st.integers(1, 30))
    if end == "deliver":
        events.append(f.delivered(order_id, len(events) + 1, day))
    elif end == "cancel":
        refund = draw(st.integers(0, paid))
        events.append(f.cancelled(order_id, len(events) + 1, day, refund=refund))
        if refund and draw(st.booleans()):
            events.append(f.refunded(order_id, len(events) + 1, day + 3, refund))
    return events


@st.composite
def histories(draw: st.DrawFn) -> list[list[Event]]:
    count = draw(st.integers(1, 12))
    return [draw(order_history(f"O{i:02d}")) for i in range(count)]


@st.composite
def interleaving(draw: st.DrawFn, per_order: list[list[Event]]) -> list[Event]:
    """A random merge that keeps each order's own events in seq order."""
    slots = [i for i, events in enumerate(per_order) for _ in events]
    order = draw(st.permutations(slots))
    cursors = [0] * len(per_order)
    merged = []
    for i in order:
        merged.append(per_order[i][cursors[i]])
        cursors[i] += 1
    return merged


def by_time(per_order: list[list[Event]]) -> list[Event]:
    return sorted((e for events in per_order for e in events), key=lambda e: (e.occurred_at, e.order_id, e.seq))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_interleaving_does_not_change_projections(data: st.DataObject) -> None:
    per_order = data.draw(histories())
    one, other = data.draw(interleaving(per_order)), data.draw(interleaving(per_order))
    for policy in POLICIES:
        settings_ = BankSettings(policy=policy)
        first = fold(one, settings_)
        assert first.applied == sum(map(len, per_order)) and not first.rejections
        assert canonical(first.snapshot()) == canonical(fold(other, settings_).snapshot())
        assert canonical(first.snapshot()) == canonical(fold(one, settings_).snapshot())  # deterministic


def expected_positions(bank: OrderBank, policy: Policy) -> dict[str, list[str]]:
    """Each lane's open orders sorted by policy key, computed from scratch."""
    lanes: dict[str, list[Any]] = defaultdict(list)
    everyone = sorted(bank.orders.values(), key=lambda o: (o.placed_us, o.order_id))
    ordinal: dict[str, int] = {}
    for order in everyone:
        ordinal[order.order_id] = sum(1 for o in everyone if o.lane == order.lane and o is not order
                                      and (o.placed_us, o.order_id) < (order.placed_us, order.order_id))
    for order in everyone:
        if order.status is Status.OPEN:
            lanes[order.lane].append(order)

    def key(order: Any) -> Any:
        order.ordinal = ordinal[order.order_id]
        return policy.key(order)

    return {lane: [o.order_id for o in sorted(orders, key=key)] for lane, orders in lanes.items()}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_positions_are_a_permutation_in_policy_order(data: st.DataObject) -> None:
    per_order = data.draw(histories())
    events = data.draw(interleaving(per_order))
    for policy in POLICIES:
        bank = fold(events, BankSettings(policy=policy))
        lanes: Any = bank.snapshot()["queue"]["lanes"]
        expected = expected_positions(bank, policy)
        for name, lane in lanes.items():
            ranked = sorted(lane["positions"], key=lambda oid: lane["positions"][oid]["position"])
            assert sorted(p["position"] for p in lane["positions"].values()) == list(range(1, lane["open"] + 1))
            assert ranked == expected.get(name, [])
            for oid in ranked:
                position = bank.position_of(oid)
                assert position is not None and position.position == lane["positions"][oid]["position"]


@settings(max_examples=80, deadline=None)
@given(histories())
def test_pool_is_the_sum_over_orders(per_order: list[list[Event]]) -> None:
    bank = fold(by_time(per_order))
    sums: dict[Any, list[int]] = defaultdict(lambda: [0] * len(FIGURES))
    for order in bank.orders.values():
        for i, value in enumerate(contribution(order)):
            sums[bucket_of(order)][i] += value
    assert {k: v for k, v in bank.pool.buckets.items() if any(v)} == {k: v for k, v in sums.items() if any(v)}
    totals: Any = bank.snapshot()["pool"]["totals"]
    if totals:
        held = sum(o.paid - o.refunded for o in bank.orders.values()
                   if o.status is Status.OPEN or o.status is Status.CANCELLED) \
            - sum(o.paid - o.refund_due for o in bank.orders.values() if o.status is Status.CANCELLED)
        assert totals["CNY"]["held"] == held


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_duplicates_change_nothing(data: st.DataObject) -> None:
    per_order = data.draw(histories())
    events = by_time(per_order)
    picks = data.draw(st.lists(st.integers(0, len(events) - 1), min_size=1, max_size=10))
    with_dupes = list(events)
    for pick in sorted(picks, reverse=True):
        # Redeliver an already-applied event somewhere after it, sometimes under a fresh event_id.
        event = events[pick]
        if data.draw(st.booleans()):
            event = event.model_copy(update={"event_id": f.eid(event.order_id, event.seq, "redelivered")})
        with_dupes.insert(data.draw(st.integers(pick + 1, len(with_dupes))), event)
    clean, noisy = fold(events), fold(with_dupes)
    assert canonical(noisy.snapshot()) == canonical(clean.snapshot())
    assert (noisy.applied, noisy.duplicates, noisy.rejections) == (clean.applied, len(picks), clean.rejections)
