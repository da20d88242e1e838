"""Why an order stands where it does, and where it stood: checked against banks folded up to each moment."""

from __future__ import annotations

import pytest

from orderbank.projections.bank import BankSettings, OrderBank, Verdict, fold
from orderbank.projections.orders import US_PER_DAY, micros
from orderbank.projections.policies import BoundedOvertake, parse_policy
from orderbank.projections.standing import (
    LaneTimes,
    history_from_state,
    parameters_of,
    rule_of,
    standing,
)
from orderbank.replay.audit import Events
from tests.engine.web.launches import events
from tests.support import factories as f

POLICIES = ("fifo", "high-trim-first", "paid-first", "bounded-overtake:k=300")


def folded_until(policy: str, until_us: int) -> tuple[OrderBank, Events]:
    """The bank as of `until_us`, and the events it applied (when each order's full price arrived)."""
    bank, seen = OrderBank(BankSettings(policy=parse_policy(policy))), Events()
    for event in events():
        if micros(event.occurred_at) > until_us:
            break
        if bank.apply(event) is Verdict.APPLIED:
            seen.add(bank, event)
    return bank, seen


@pytest.mark.parametrize("policy", POLICIES)
def test_the_position_history_is_the_position_each_day_had(policy: str) -> None:
    end = micros(events()[-1].occurred_at)
    final, seen = folded_until(policy, end)
    lane = next(iter(final.queue.lanes))
    times = LaneTimes.of(final, lane, seen.paid_at)
    start = micros(events()[0].occurred_at)
    checked = 0
    for day in (1, 20, 60, 120, 200):
        moment = start - start % US_PER_DAY + day * US_PER_DAY
        then, _ = folded_until(policy, moment)
        open_then = list(then.queue.lanes[lane].order_ids())
        for order_id in open_then[:: max(1, len(open_then) // 25)]:
            position = then.position_of(order_id)
            assert position is not None
            assert times.positions(order_id, [moment]) == [position.position], (order_id, day)
            checked += 1
    assert checked > 50


def test_an_order_is_in_no_position_before_it_was_placed_or_after_it_closed() -> None:
    bank, seen = folded_until("fifo", micros(events()[-1].occurred_at))
    order = next(o for o in bank.orders.values() if o.closed_us is not None)
    times = LaneTimes.of(bank, order.lane, seen.paid_at)
    assert order.closed_us is not None
    assert times.positions(order.order_id, [order.placed_us - 1, order.closed_us, order.closed_us + 1]) == [None] * 3


@pytest.mark.parametrize("policy", POLICIES)
def test_overtakes_are_the_orders_ahead_that_were_placed_later(policy: str) -> None:
    bank, _ = folded_until(policy, micros(events()[len(events()) // 3].occurred_at))
    lane = next(iter(bank.queue.lanes.values()))
    sequence = list(lane.order_ids())
    for order_id in sequence[:: max(1, len(sequence) // 40)]:
        found = standing(bank, order_id)
        assert found is not None
        me = bank.orders[order_id]
        ahead = [bank.orders[other] for other in sequence[:sequence.index(order_id)]]
        assert (found.position, found.ahead, found.open_in_lane) == (len(ahead) + 1, len(ahead), len(sequence))
        assert found.overtakes == sum((o.placed_us, o.order_id) > (me.placed_us, me.order_id) for o in ahead)
        assert found.rule == rule_of(bank.settings.policy)
    if policy == "fifo":
        assert all((standing(bank, o) or pytest.fail()).overtakes == 0 for o in sequence[:50])


def test_a_closed_or_unknown_order_has_no_standing() -> None:
    bank = fold([f.placed("A"), f.delivered("A", 2, 3)])
    assert standing(bank, "A") is None and standing(bank, "NOPE") is None


def test_the_rule_names_the_policys_parameters() -> None:
    assert "500" in rule_of(BoundedOvertake(k=500)) and "1,000" in rule_of(BoundedOvertake())
    assert parameters_of(BoundedOvertake(k=500)) == {"k": 500, "top_rank": 2}
    assert parameters_of(parse_policy("fifo")) == {}
    for policy in POLICIES:
        assert rule_of(parse_policy(policy)).endswith(".")


def test_a_state_tells_the_demands_the_total_paid_and_how_the_order_closed() -> None:
    bank = fold([f.placed("A", deposit=500_000), f.demanded("A", 2, 1, 1_000_000), f.received("A", 3, 2, 600_000),
                 f.cancelled("A", 4, 3, refund=1_100_000), f.refunded("A", 5, 4, 100_000)])
    kinds = [(h.kind, h.amount) for h in history_from_state(bank.orders["A"])]
    assert kinds == [("placed", 500_000), ("demanded", 1_000_000), ("paid", 600_000), ("cancelled", 1_100_000),
                     ("refunded", 100_000)]
