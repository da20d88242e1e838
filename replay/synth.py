"""A seeded synthetic launch: the order-bank history of a car launch, as events.

A `Scenario` describes the launch as data (order volume and its burst, trims and prices,
delivery capacity ramp, payment and patience behaviour); `generate(scenario, seed)` simulates
it day by day and yields event dicts in log order (occurred_at, order_id, seq). At the launch
the maker declares its production plan (`ProductionPlanned`: the ramp in weekly steps, a little
optimistic); production then follows the plan with a deviation of its own (a slow drift around the
plan's average adherence, plus day-to-day noise) and, if the scenario says so, falls short of it
from some day on. Cars are allocated by the scenario's policy (the seed case: high trims first);
an order allocated a car is asked for its balance at once, due in `balance_due_days`, and its car
is handed over about `demand_lead_days` later (a lognormal spread: logistics and scheduling); some
never pay and are voided at the due date. Orders still waiting cancel when their patience
(Weibull, increasing hazard: the longer the wait, the likelier the cancel) runs out.
The same scenario and seed give byte-identical output.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from orderbank.projections.errors import ConfigError
from orderbank.projections.orders import US_PER_DAY, iso, micros
from orderbank.projections.policies import HighTrimFirst, Key, Policy

ORDER_DIGITS = 6
"""Digits of an order's number (YU7-000042); more only for a launch of a million orders or more."""


@dataclass(frozen=True)
class Trim:
    name: str
    rank: int
    share: float
    price: int  # minor units
    margin: float  # share of price that is margin, for revenue-at-risk figures


@dataclass(frozen=True)
class Scenario:
    """A launch described as data. Money in minor units of `currency`."""

    name: str = "custom"
    orders: int = 5_000
    launch_share: float = 0.96  # of all orders, placed on launch day
    launch: datetime = datetime(2025, 6, 26, 14, 0, tzinfo=UTC)  # 22:00 Beijing time
    horizon_days: int = 365
    model: str = "YU7"
    currency: str = "CNY"
    deposit: int = 500_000
    trims: tuple[Trim, ...] = (
        Trim("Standard", 0, 0.30, 25_350_000, 0.08),
        Trim("Pro", 1, 0.25, 27_990_000, 0.12),
        Trim("Max", 2, 0.45, 32_990_000, 0.18),
    )
    # Cars a day for the full-size launch; scaled by orders / reference_orders.
    capacity_start: float = 200.0
    capacity_full: float = 1_330.0
    ramp_days: int = 120
    reference_orders: int = 300_000
    demand_lead_days: int = 21
    balance_due_days: int = 7
    pay_probability: float = 0.93
    patience_shape: float = 1.6
    patience_scale_days: float = 330.0
    refund_delay_days: int = 5
    transfer_probability: float = 0.015
    prepay_share: float = 0.0  # of customers, who pay the whole balance unasked while waiting
    prepay_within_days: int = 60
    policy: Policy = field(default_factory=HighTrimFirst)
    # Production against the declared plan: the plan is the capacity ramp over `adherence`, in steps of
    # `plan_step_days` (declared in whole cars); production is plan x adherence x exp(drift + noise), the
    # drift an AR(1) in logs (stationary sd `drift_sd`, correlation time `drift_days`), the noise
    # `daily_sd` a day; from `shortfall_from_day` on it falls `shortfall` short of that.
    declare_plan: bool = True
    plan_step_days: int = 7
    adherence: float = 0.95
    drift_sd: float = 0.03
    drift_days: float = 20.0
    daily_sd: float = 0.08
    shortfall: float = 0.0
    shortfall_from_day: int = 60
    lead_sd: float = 0.4  # log sd of allocation-to-handover days around demand_lead_days

    def capacity(self, day: float) -> float:
        """Cars a day on `day`, ramping linearly from capacity_start to capacity_full."""
        full = self.orders / self.reference_orders
        ramp = min(1.0, day / self.ramp_days)
        return full * (self.capacity_start + (self.capacity_full - self.capacity_start) * ramp)

    def plan(self) -> list[tuple[int, float]]:
        """The plan: (first day, cars a day) steps, each the ramp's rate mid-step over the adherence."""
        steps: list[tuple[int, float]] = []
        day = 0
        while True:
            steps.append((day, self.capacity(day + self.plan_step_days / 2) / self.adherence))
            if day >= self.ramp_days:
                return steps
            day += self.plan_step_days


PRESETS: dict[str, Scenario] = {
    # A mid-launch snapshot: 1 November 2025, the day of the seed article.
    "small": Scenario(name="small", orders=3_000, horizon_days=128),
    # docs/seed.md: 289k orders on launch day, ~6k delivered in month one, ~40k a
    # month by October, 140-150k waiting then, 19% cancelled by 1 November (day 128); calibrated
    # by tests/replay/test_calibration.py. The 8% who prepay in full unasked are an assumption
    # (docs/seed.md has no figure), there so that paid-first has payments to order by.
    "yu7": Scenario(name="yu7", orders=300_000, launch_share=289_000 / 300_000, demand_lead_days=14,
                    capacity_start=330.0, capacity_full=1_450.0, ramp_days=100, patience_scale_days=310.0,
                    prepay_share=0.08),
}


def preset(name: str, orders: int | None = None) -> Scenario:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    base = PRESETS[name]
    return base if orders is None else replace(base, orders=orders)


@dataclass(slots=True)
class _Order:
    order_id: str
    placed_us: int
    trim: Trim
    ordinal: int
    patience_us: int
    seq: int = 0
    last_us: int = 0
    fully_paid: bool = False
    prepay_us: int | None = None

    @property
    def trim_rank(self) -> int:
        return self.trim.rank

    def paid(self, deposit: int) -> int:
        return self.trim.price if self.fully_paid else deposit


class _Log:
    """Collects events as (time, order_id, seq, doc) for one final sort into log order."""

    def __init__(self, rng: random.Random, currency: str) -> None:
        self.rng, self.currency = rng, currency
        self.rows: list[tuple[int, str, int, dict[str, Any]]] = []

    def money(self, minor: int) -> dict[str, Any]:
        return {"minor": minor, "currency": self.currency}

    def add(self, order: _Order, at_us: int, kind: str, **facts: Any) -> None:
        # An order's own events must stay in time order, whatever was drawn for them.
        at_us = order.last_us = max(at_us, order.last_us + 1)
        order.seq += 1
        doc = {"type": kind, "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
               "order_id": order.order_id, "seq": order.seq, "occurred_at": iso(at_us),
               "schema_version": 2, **facts}
        self.rows.append((at_us, order.order_id, order.seq, doc))


def generate(scenario: Scenario, seed: int) -> Iterator[dict[str, Any]]:
    """The launch's events in log order up to the horizon. Deterministic in (scenario, seed)."""
    rng = random.Random(seed)
    log = _Log(rng, scenario.currency)
    start_us = micros(scenario.launch)
    orders = _place_all(scenario, rng, log, start_us)
    if scenario.declare_plan:
        _declare_plan(scenario, log, start_us, orders[0].placed_us + 1 if orders else start_us)
    _serve(scenario, rng, log, orders, start_us, production(scenario, seed))
    log.rows.sort(key=lambda row: row[:3])
    end_us = start_us + (scenario.horizon_days + 1) * US_PER_DAY  # the log is cut here
    for row in log.rows:
        if row[0] >= end_us:
            break
        yield row[3]


def _declare_plan(scenario: Scenario, log: _Log, start_us: int, at_us: int) -> None:
    """The maker's plan, declared as the launch opens (just after its first order): a stream of its own,
    "plan:<model>", with the steps' rates rounded to whole cars."""
    stream = _Order(f"plan:{scenario.model}", start_us, scenario.trims[0], -1, 0)
    log.add(stream, at_us, "ProductionPlanned", model=scenario.model,
            schedule=[{"starts_at": iso(start_us + first * US_PER_DAY), "cars_per_day": round(rate)}
                      for first, rate in scenario.plan()],
            delivery_lead_days=scenario.demand_lead_days)


def production(scenario: Scenario, seed: int) -> list[float]:
    """Cars built on each day of the horizon: the plan times the adherence, drift, noise and shortfall.
    Drawn from a generator of its own, so the orders' draws do not depend on it."""
    rng = random.Random(seed * 7_919 + 104_729)
    keep = math.exp(-1 / scenario.drift_days)
    shock = scenario.drift_sd * math.sqrt(1 - keep * keep)
    drift = rng.gauss(0.0, scenario.drift_sd)
    steps, out = scenario.plan(), []
    for day in range(scenario.horizon_days + 1):
        planned = next(rate for first, rate in reversed(steps) if first <= day)
        short = 1 - scenario.shortfall if day >= scenario.shortfall_from_day else 1.0
        noise = rng.gauss(0.0, scenario.daily_sd)
        out.append(planned * scenario.adherence * short * math.exp(drift + noise))
        drift = keep * drift + rng.gauss(0.0, shock)
    return out


def _arrival_times(scenario: Scenario, rng: random.Random, start_us: int) -> list[int]:
    launch = round(scenario.orders * scenario.launch_share)
    # Launch day: most orders in the first hours, decaying; then a trickle that fades.
    times = [start_us + int(rng.expovariate(1 / 3.0) % 10 * 3_600_000_000) for _ in range(launch)]
    trickle_days = max(1, scenario.horizon_days)
    weights = [math.exp(-d / 45) for d in range(1, trickle_days + 1)]
    days = rng.choices(range(1, trickle_days + 1), weights=weights, k=scenario.orders - launch)
    times += [start_us + d * US_PER_DAY + rng.randrange(US_PER_DAY) for d in days]
    times.sort()
    return times


def order_id(model: str, number: int, launch_size: int) -> str:
    """The id of a launch's `number`-th order: the same whatever the launch size, up to a million orders."""
    return f"{model}-{number:0{max(ORDER_DIGITS, len(str(launch_size)))}d}"


def _place_all(scenario: Scenario, rng: random.Random, log: _Log, start_us: int) -> list[_Order]:
    trims, shares = scenario.trims, [t.share for t in scenario.trims]
    channels, channel_weights = ("app", "store", "web"), (0.8, 0.15, 0.05)
    orders = []
    for i, placed_us in enumerate(_arrival_times(scenario, rng, start_us)):
        trim = rng.choices(trims, weights=shares)[0]
        patience = rng.weibullvariate(scenario.patience_scale_days, scenario.patience_shape)
        order = _Order(order_id(scenario.model, i + 1, scenario.orders), placed_us, trim, i,
                       int(patience * US_PER_DAY))
        if scenario.prepay_share and rng.random() < scenario.prepay_share:
            order.prepay_us = placed_us + rng.randrange(scenario.prepay_within_days * US_PER_DAY)
        log.add(order, placed_us, "OrderPlaced", customer_id=f"C{rng.getrandbits(40):012x}",
                model=scenario.model, trim=trim.name, trim_rank=trim.rank,
                list_price=log.money(trim.price), deposit=log.money(scenario.deposit),
                placed_at=iso(placed_us), channel=rng.choices(channels, channel_weights)[0])
        orders.append(order)
    return orders


_PREPAY, _CANCEL = 0, 1


def _serve(scenario: Scenario, rng: random.Random, log: _Log, orders: list[_Order], start_us: int,
           built: list[float]) -> None:
    """Day by day: arrivals join the queue, impatient orders cancel, capacity is allocated."""
    policy = scenario.policy
    queue: list[tuple[Key, str, _Order]] = []  # by policy key
    calendar: list[tuple[int, int, str, _Order]] = []  # prepayments and patience running out, by time
    waiting: set[str] = set()
    arrivals = iter(orders)
    pending = next(arrivals, None)
    carry = 0.0
    vin = 0
    for day in range(scenario.horizon_days + 1):
        day_end = start_us + (day + 1) * US_PER_DAY
        while pending is not None and pending.placed_us < day_end:
            heapq.heappush(queue, (policy.key(pending), pending.order_id, pending))
            heapq.heappush(calendar, (pending.placed_us + pending.patience_us, _CANCEL, pending.order_id, pending))
            if pending.prepay_us is not None:
                heapq.heappush(calendar, (pending.prepay_us, _PREPAY, pending.order_id, pending))
            waiting.add(pending.order_id)
            if rng.random() < scenario.transfer_probability:
                _transfer(rng, log, pending)
            pending = next(arrivals, None)
        while calendar and calendar[0][0] < day_end:
            at_us, kind, order_id, order = heapq.heappop(calendar)
            if order_id not in waiting:
                continue
            if kind == _PREPAY:
                _prepay(scenario, log, order, at_us)
                continue
            waiting.discard(order_id)
            paid = order.paid(scenario.deposit)
            log.add(order, at_us, "OrderCancelled", reason="customer", refund=log.money(paid))
            log.add(order, at_us + scenario.refund_delay_days * US_PER_DAY, "RefundPaid", amount=log.money(paid))
        carry += built[day]
        chosen = []
        while carry >= 1 and queue:
            _, order_id, order = heapq.heappop(queue)
            if order_id not in waiting:
                continue
            waiting.discard(order_id)
            carry -= 1
            chosen.append(order)
        for k, order in enumerate(chosen):
            vin += 1
            # The day's balance demands go out in the second half of the day, in queue order.
            demand_us = day_end - US_PER_DAY // 2 + (k + 1) * (US_PER_DAY // 2) // (len(chosen) + 1)
            _allocate(scenario, rng, log, order, demand_us, vin)


def _transfer(rng: random.Random, log: _Log, order: _Order) -> None:
    """A scalper sells the slot on, within two weeks of the launch rush."""
    at_us = order.placed_us + rng.randrange(14 * US_PER_DAY)
    log.add(order, at_us, "OrderTransferred", new_customer_id=f"C{rng.getrandbits(40):012x}")


def _prepay(scenario: Scenario, log: _Log, order: _Order, at_us: int) -> None:
    """A customer pays the whole balance while waiting, unasked (what paid-first rewards)."""
    log.add(order, at_us, "PaymentReceived", amount=log.money(order.trim.price - scenario.deposit))
    order.fully_paid = True


def _allocate(scenario: Scenario, rng: random.Random, log: _Log, order: _Order, demand_us: int, vin: int) -> None:
    """A car is built for this order: demand the balance (unless paid), then deliver or void."""
    due_us = demand_us + scenario.balance_due_days * US_PER_DAY
    balance = order.trim.price - scenario.deposit
    pays = order.fully_paid or rng.random() < scenario.pay_probability
    if not order.fully_paid:
        log.add(order, demand_us, "PaymentDemanded", amount=log.money(balance), due_at=iso(due_us),
                purpose="balance")
        if pays:
            paid_us = demand_us + rng.randrange(scenario.balance_due_days * US_PER_DAY)
            log.add(order, paid_us, "PaymentReceived", amount=log.money(balance))
    if pays:
        lead_days = scenario.demand_lead_days * rng.lognormvariate(0.0, scenario.lead_sd)
        delivered_us = demand_us + int(lead_days * US_PER_DAY)
        log.add(order, delivered_us, "VehicleDelivered", delivered_at=iso(delivered_us),
                vin=f"LXMCAR{vin:011d}")
    else:
        log.add(order, due_us, "OrderCancelled", reason="balance_not_paid", refund=log.money(0))
