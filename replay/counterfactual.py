"""History replayed under another ordering policy: the same orders, cars and customers.

Kept from the log, whatever the policy: order arrivals (time, trim, price, lane), the cars
(each historical allocation is a slot: a car allocated at that time, delivered when the log
delivered it, or `lead` after allocation if it was not), voluntary prepayments (made while the
order still waits, at their historical time), and the maker's own cancellations.
Re-decided by the simulation: which waiting order each car goes to (`orderbank.replay.serve` with the
policy's ranks), and so when orders are allocated, pay, are delivered or run out of patience.

Customers, one replication's draws (`Behaviour`, shared by all policies so they are compared
on the same customers): an order that cancelled in history keeps its observed patience; every
other order draws patience beyond the wait it survived in history. Allocated orders are asked
for the balance (due in `due` days): those asked in history answer as they did (paid after the
same delay, or let the order be voided); the others pay with the log's pay probability after a
delay resampled from the log. A car whose order is voided is lost, as in history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orderbank.projections.orders import US_PER_DAY
from orderbank.projections.policies import BoundedOvertake, Fifo, HighTrimFirst, PaidFirst, Policy
from orderbank.replay.estimates import Estimates
from orderbank.replay.orderlog import (
    BALANCE_NOT_PAID,
    CUSTOMER,
    FRAUD,
    I32,
    I64,
    MAKER,
    NEVER,
    Flags,
    Movements,
    OrderLog,
)
from orderbank.replay.outcome import Outcome, sum_by_order
from orderbank.replay.serve import FOREVER, Queue, serve


@dataclass(frozen=True)
class Behaviour:
    """One replication's customers: patience deadlines, whether and when they pay."""

    deadline_us: I64
    pays: Flags
    delay_us: I64


@dataclass(frozen=True)
class Ranks:
    """A policy's priority for every order: lower is served sooner; rekey on full prepayment."""

    rank: I64
    rekey_us: I64 | None
    rekey_rank: I64 | None


class _View:
    """The facts a policy key reads (orderbank.projections.policies.Queued), one order at a time."""

    __slots__ = ("fully_paid", "order_id", "ordinal", "placed_us", "trim_rank")

    def __init__(self) -> None:
        self.order_id, self.placed_us, self.trim_rank, self.fully_paid, self.ordinal = "", 0, 0, False, 0


def policy_ranks(log: OrderLog, policy: Policy, ordinal: I64) -> Ranks:
    """Sort every order by `policy.key` (as the live queue does); a policy that reads payments
    also gets each prepaid order's key once fully paid."""
    rekeyed = np.flatnonzero(log.prepaid_us != NEVER) if policy.rekeys_on_payment else np.zeros(0, np.int64)
    entries = np.concatenate((np.arange(log.orders), rekeyed))
    fully_paid = (log.deposit >= log.list_price)[entries]
    fully_paid[log.orders:] = True
    keys = _key_columns(policy, log.trim_rank[entries], fully_paid, ordinal[entries])
    if keys is None:
        sequence = _sorted_by_key(log, policy, entries, fully_paid, ordinal)
    else:  # np.lexsort is stable, as list.sort is: entries with equal keys keep their order
        sequence = np.lexsort((log.first_come[entries], *reversed(keys)))
    position = np.empty(len(entries), dtype=np.int64)
    position[sequence] = np.arange(len(entries))
    rank = position[: log.orders]
    if not policy.rekeys_on_payment:
        return Ranks(rank, None, None)
    rekey_rank = np.full(log.orders, NEVER, dtype=np.int64)
    rekey_rank[rekeyed] = position[log.orders:]
    return Ranks(rank, log.prepaid_us, rekey_rank)


def _key_columns(policy: Policy, trim_rank: I64, fully_paid: Flags, ordinal: I64) -> list[I64] | None:
    """The policy's key without its last two fields (placed_us, order_id, which `OrderLog.first_come`
    ranks), as columns, most significant first: the keys of `orderbank.projections.policies` computed
    for all orders at once. None for a policy not defined there (its `key` is then called per order);
    tests/replay/test_ranks.py checks both ways give the same ranks."""
    kind = type(policy)
    if kind is Fifo:
        return []
    if kind is HighTrimFirst:
        return [-trim_rank]
    if kind is PaidFirst:
        return [np.where(fully_paid, 0, 1)]
    if isinstance(policy, BoundedOvertake) and kind is BoundedOvertake:
        boost = policy.k * np.minimum(trim_rank, policy.top_rank) // policy.top_rank
        return [ordinal - boost, -boost]
    return None


def _sorted_by_key(log: OrderLog, policy: Policy, entries: I64, fully_paid: Flags, ordinal: I64) -> I64:
    """The entries (orders, with their flag of full payment) in the order of `policy.key`, one call per entry."""
    view = _View()
    order_ids, placed, ranks, ordinals = log.order_id, log.placed_us.tolist(), log.trim_rank.tolist(), ordinal.tolist()
    keys = []
    for i, paid in zip(entries.tolist(), fully_paid.tolist(), strict=True):
        view.order_id, view.placed_us, view.trim_rank, view.fully_paid, view.ordinal = (
            order_ids[i], placed[i], ranks[i], paid, ordinals[i])
        keys.append(policy.key(view))
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def draw_behaviour(log: OrderLog, estimates: Estimates, seed: int) -> Behaviour:
    rng = np.random.default_rng(seed)
    observed = estimates.cancelled
    patience = estimates.waited_days.copy()
    patience[~observed] = estimates.patience.draw_beyond(estimates.waited_days[~observed], rng)
    deadline = np.full(log.orders, FOREVER, dtype=np.int64)
    finite = np.isfinite(patience)
    deadline[finite] = log.placed_us[finite] + (patience[finite] * US_PER_DAY).astype(np.int64)
    asked = log.demand_us != NEVER
    paid_after = asked & (log.fully_paid_us != NEVER) & (log.fully_paid_us >= log.demand_us)
    refused = asked & ~paid_after & (log.cancelled_us != NEVER)
    pays = rng.random(log.orders) < estimates.pay_probability
    pays = np.where(paid_after | (log.prepaid_us != NEVER), True, np.where(refused, False, pays))
    delays = estimates.pay_delays_us
    delay = rng.choice(delays, log.orders) if len(delays) else np.zeros(log.orders, np.int64)
    delay = np.where(paid_after, log.fully_paid_us - log.demand_us, delay)
    return Behaviour(deadline, pays, delay.astype(np.int64))


def _calendar_cancellations(log: OrderLog, estimates: Estimates) -> tuple[I64, I32]:
    """The maker's cancellations of orders still waiting: they happen whatever the policy."""
    by_maker = np.isin(log.reason, (MAKER, FRAUD)) & (
        (estimates.allocated_us == NEVER) | (log.cancelled_us < estimates.allocated_us))
    return np.where(by_maker, log.cancelled_us, FOREVER), np.where(by_maker, log.reason, 0).astype(np.int32)


def replay(log: OrderLog, estimates: Estimates, ranks: Ranks, behaviour: Behaviour) -> Outcome:
    """The outcome of one policy for one replication's customers."""
    removal_us, removal_reason = _calendar_cancellations(log, estimates)
    deadline = np.minimum(behaviour.deadline_us, removal_us)
    allocated = np.full(log.orders, NEVER, dtype=np.int64)
    car_delivery = np.full(log.orders, NEVER, dtype=np.int64)
    history = estimates.allocated_us
    for lane in range(len(log.lanes)):
        members = np.flatnonzero(log.lane == lane)
        cars = np.flatnonzero((log.lane == lane) & (history != NEVER))
        cars = cars[np.argsort(history[cars], kind="stable")]
        delivery = np.where(log.delivered_us[cars] != NEVER, log.delivered_us[cars], history[cars] + estimates.lead_us)
        queue = Queue(log.placed_us[members], ranks.rank[members], deadline[members],
                      None if ranks.rekey_us is None else ranks.rekey_us[members],
                      None if ranks.rekey_rank is None else ranks.rekey_rank[members])
        served = serve(queue, history[cars])
        got = served.slot != NEVER
        allocated[members[got]] = served.allocated_us[got]
        car_delivery[members[got]] = delivery[served.slot[got]]
    return _settle(log, estimates, behaviour, allocated, car_delivery, deadline, removal_reason)


def _settle(log: OrderLog, estimates: Estimates, behaviour: Behaviour, allocated: I64, car_delivery: I64,
            deadline: I64, removal_reason: I32) -> Outcome:
    """From who got which car to deliveries, payments, voids, cancellations and refunds."""
    end = log.end_us
    is_allocated = allocated != NEVER
    waiting_until = np.where(is_allocated, allocated, np.minimum(deadline, end + 1))
    prepay = log.payments.voluntary & (log.payments.at_us < waiting_until[log.payments.order])
    kept = Movements(log.payments.order[prepay], log.payments.at_us[prepay], log.payments.amount[prepay])
    paid_before = log.deposit + sum_by_order(kept, log.orders)
    balance = np.maximum(log.list_price - paid_before, 0)
    asked = is_allocated & (balance > 0)
    pays = is_allocated & ((balance == 0) | behaviour.pays)
    pay_us = allocated + behaviour.delay_us
    settles = asked & pays & (pay_us <= end)
    delivered = np.where(pays, np.maximum(car_delivery, np.where(asked, pay_us, allocated)), NEVER)
    delivered = np.where(delivered <= end, delivered, NEVER)

    voided_us = allocated + estimates.due_us
    voided = is_allocated & ~pays & (voided_us <= end)
    gone = ~is_allocated & (deadline <= end)
    cancelled = np.where(voided, voided_us, np.where(gone, deadline, NEVER))
    reason = np.where(voided, BALANCE_NOT_PAID, np.where(
        gone, np.where(removal_reason > 0, np.where(deadline < behaviour.deadline_us, removal_reason, CUSTOMER),
                       CUSTOMER), 0)).astype(np.int32)

    orders = np.concatenate([kept.order, np.flatnonzero(settles)])
    at_us = np.concatenate([kept.at_us, pay_us[settles]])
    amount = np.concatenate([kept.amount, balance[settles]])
    sequence = np.lexsort((orders, at_us))
    payments = Movements(orders[sequence], at_us[sequence], amount[sequence])
    refund_due, refunds = _refunds(log, estimates, payments, cancelled, reason)
    return Outcome(entered_us=log.placed_us, allocated_us=np.where(is_allocated, allocated, NEVER),
                   delivered_us=delivered, left_us=delivered, cancelled_us=cancelled, reason=reason,
                   refund_due=refund_due, payments=payments, refunds=refunds)


def _refunds(log: OrderLog, estimates: Estimates, payments: Movements, cancelled: I64,
             reason: I32) -> tuple[I64, Movements]:
    paid = log.deposit + sum_by_order(payments, log.orders)
    share = np.zeros(len(CODES), dtype=np.float64)
    delay = np.full(len(CODES), FOREVER, dtype=np.int64)
    for code, rule in estimates.refunds.items():
        share[code] = rule.share
        if rule.delay_us is not None:
            delay[code] = rule.delay_us
    due = np.where(cancelled != NEVER, np.round(paid * share[reason]).astype(np.int64), 0)
    refund_at = np.where(delay[reason] == FOREVER, FOREVER, cancelled + delay[reason])
    refunded = (cancelled != NEVER) & (due > 0) & (refund_at <= log.end_us)
    return due, Movements(np.flatnonzero(refunded), refund_at[refunded], due[refunded])


CODES = (0, CUSTOMER, BALANCE_NOT_PAID, MAKER, FRAUD)


def run_policy(log: OrderLog, estimates: Estimates, ranks: Ranks, seed: int) -> Outcome:
    return replay(log, estimates, ranks, draw_behaviour(log, estimates, seed))
