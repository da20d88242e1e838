"""One lane's ETA forecast: for each place in its queue, when the car should come, as a band.

`forecast(columns, plans, policy, epoch_us, seed)` reads the lane's orders as they stood at the epoch (a
UTC midnight, or the time a plan was declared): every fact dated after it is left out, so the forecast
is a function of the epoch and the facts alone, whenever and in whatever order they were folded. It
returns a `Forecast`: for every place in the queue at the epoch, the 10th, 50th and 90th percentiles of
the delivery time (`bands`), and past the last place the same for orders that join later.

The model, per replication (R of them, seeded by the lane and the epoch: common random numbers):
- the cars to come each day (orderbank.projections.supply);
- an order already allocated a car gets it a lead after the allocation (the lead's distribution as the
  log shows it, given that it has not come yet);
- the waiting orders are served in queue order, one per car. Orders ahead that cancel first free their
  car for the next: the head of the queue moves through the places at epoch (cars a day) / (share of
  the customers there still waiting), the customers' patience drawn from the lane's censored waits
  (orderbank.projections.survival) and each place's age. Orders that come later and rank ahead (higher
  trims under high-trim-first; customers behind who pay in full, under paid-first) take cars first:
  each class of places has its own head, which those later orders hold back;
- the order's own car then comes a lead later.
The band of a place is the percentiles of that time: the lead's distribution mixed over the replications'
allocation days, exactly (not a lead drawn per replication, whose luck would move a whole cutoff's bands).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from orderbank.projections.lanefacts import DELIVERED, GAVE_UP, NEVER, Columns
from orderbank.projections.orders import US_PER_DAY
from orderbank.projections.plans import Declared, daily_cars
from orderbank.projections.policies import BoundedOvertake, HighTrimFirst, PaidFirst, Policy
from orderbank.projections.supply import HISTORY_DAYS, UNREADABLE, Observed, cars_to_come
from orderbank.projections.survival import Waits, draw, waits_of

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
REPLICATIONS = 200
HORIZON_DAYS = 3 * 365
GRID = 384
QUANTILES = (0.1, 0.5, 0.9)
HOUR_US = 3_600_000_000
LEAD_DAYS_READ = 60  # cars allocated in the last this many days give the lead's distribution ...
MIN_LEADS = 30  # ... once this many were delivered; before, the plan's word (or a default) with a spread
LEAD_POINTS = (np.arange(201) + 0.5) / 201
RESOLUTION_DAYS = 1 / 24 / 8  # a band's dates are found to within this: well under the hour they are shown to
DEFAULT_LEAD_DAYS, LEAD_SPREAD, UNKNOWN_LEAD_SPREAD = 14.0, 0.4, 0.6
UNASKED_DAYS = 14  # the share of deliveries without a demand is read over this many days
ARRIVAL_DAYS = 28
ARRIVAL_HALF_LIFE = 30.0  # prior: a launch's later orders halve every month
PAID_FIRST_CLASSES = 16
TAIL_PLACES = 100  # places past the epoch's last with a band of their own (a quarter of the lane, at least this)
WANTED_MARGIN = 3.0  # the cars' paths run until the central forecast brings this many times the places to serve
NO_ETA = "no ETA yet: no plan declared and no deliveries"


@dataclass(frozen=True)
class Forecast:
    """Bands by queue place at the epoch, and for places past them (orders that joined since)."""

    epoch_us: int
    basis: str
    note: str | None
    bands: I64
    """(3, places at the epoch): 10th, 50th, 90th percentile delivery time (microseconds, to the hour), or NEVER."""
    tail: F64
    """Places past the epoch's last (0 = the next), and ..."""
    tail_bands: F64
    """... their bands (3, len(tail)) in days after the epoch (inf: not within the horizon)."""

    def of(self, positions: I64) -> I64:
        """The (3, n) bands of these 1-based queue positions."""
        count = self.bands.shape[1]
        inside = positions <= count
        out = np.empty((3, len(positions)), dtype=np.int64)
        out[:, inside] = self.bands[:, positions[inside] - 1]
        beyond = positions[~inside] - count - 1
        if len(beyond):
            days = np.stack([np.interp(beyond, self.tail, band) for band in self.tail_bands])
            out[:, ~inside] = _times(self.epoch_us, days)
        return out


def _times(epoch_us: int, days: F64) -> I64:
    """Days after the epoch as times to the hour; NEVER past the horizon (or never)."""
    hours = np.round(np.where(days <= HORIZON_DAYS, days, 0.0) * 24).astype(np.int64)
    return np.where(days <= HORIZON_DAYS, epoch_us + hours * HOUR_US, NEVER)


@dataclass(frozen=True)
class _Layout:
    """The open orders at the epoch in queue order."""

    allocated_us: I64
    """Per place: when its car was allocated, or NEVER if it still waits."""
    waiting: I64
    """Per place: how many waiting orders are at or before it (a waiting order's 1-based index among them)."""
    klass: I64
    """Per place: the class of a waiting order (which later orders rank ahead of it); -1 if allocated."""
    ages: F64
    """Per waiting order, in queue order: days waited at the epoch."""
    inflow: F64
    """(classes, days): later orders that rank ahead of each class, cumulative from the epoch."""
    hidden_share: float | None
    """Of the open orders with a car, the share that got it without a demand (paid in full before); None: too few."""


def forecast(columns: Columns, plans: list[Declared], policy: Policy, epoch_us: int, seed: list[int]) -> Forecast:
    """The lane's bands at `epoch_us`, from its orders' facts and the plans in force then (see the module's
    docstring); `seed` seeds the replications."""
    rng = np.random.default_rng(seed)
    placed = columns.placed_us < epoch_us
    closed = placed & (columns.closed_us != NEVER) & (columns.closed_us < epoch_us)
    allocated = placed & (columns.allocated_us != NEVER) & (columns.allocated_us < epoch_us)
    leads = _leads(columns, allocated, closed, epoch_us, plans)
    lead = float(np.median(leads))
    layout = _layout(columns, placed & ~closed, allocated, policy, epoch_us)
    observed = _observed(columns, placed, closed, allocated, epoch_us, lead, layout.hidden_share)
    bounds = epoch_us + US_PER_DAY * np.arange(-HISTORY_DAYS, HORIZON_DAYS + 1, dtype=np.int64)
    planned = daily_cars(plans, bounds) if plans else np.zeros(len(bounds) - 1)
    total = len(layout.ages)
    tail_end = total + max(TAIL_PLACES, total // 4)
    wanted = WANTED_MARGIN * (tail_end + float(layout.inflow[:, -1].max(initial=0.0)))
    supply = cars_to_come(planned[:HISTORY_DAYS], planned[HISTORY_DAYS:], observed, rng, REPLICATIONS, wanted)
    note = NO_ETA if supply.basis == "none" else None
    patience = draw(_waits(columns, placed, closed, allocated, epoch_us, lead), rng, REPLICATIONS)
    heads = _heads(supply.cars, layout, patience.still_waiting, tail_end)
    grids, bands = [], []
    for klass in range(layout.inflow.shape[0]):
        members = layout.waiting[layout.klass == klass]
        top = tail_end if klass == layout.inflow.shape[0] - 1 else int(members.max(initial=0))
        grid = np.linspace(float(members.min(initial=1)), max(float(top), 1.0), GRID)
        grids.append(grid)
        bands.append(_percentiles(_reached(heads[klass], grid - 0.5), leads))
    out = np.full((3, len(layout.waiting)), NEVER, dtype=np.int64)
    for klass, (grid, band) in enumerate(zip(grids, bands, strict=True)):
        at = np.flatnonzero(layout.klass == klass)
        out[:, at] = _times(epoch_us, np.stack([np.interp(layout.waiting[at], grid, b) for b in band]))
    served = np.flatnonzero(layout.klass < 0)
    out[:, served] = _allocated_bands(layout.allocated_us[served], np.sort(leads), epoch_us)
    last = len(grids) - 1
    tail = grids[last] - total - 1
    keep = tail >= 0
    return Forecast(epoch_us, supply.basis, note, out, tail[keep], bands[last][:, keep])


def _leads(columns: Columns, allocated: npt.NDArray[np.bool_], closed: npt.NDArray[np.bool_], epoch_us: int,
           plans: list[Declared]) -> F64:
    """The lead (days from allocation to handover) at LEAD_POINTS probabilities: Kaplan-Meier over the cars
    allocated lately (a car not delivered yet has waited at least its time so far: censored; one voided
    leaves), and past the longest lead seen, a lognormal around the plan's stated lead (or
    DEFAULT_LEAD_DAYS, wider): early in a launch only the quick handovers have happened."""
    stated = [plan.lead_days for plan in plans if plan.lead_days is not None]
    median, spread = (float(max(stated)), LEAD_SPREAD) if stated else (DEFAULT_LEAD_DAYS, UNKNOWN_LEAD_SPREAD)
    prior = NormalDist(math.log(median), spread)
    lately = allocated & (columns.allocated_us >= epoch_us - LEAD_DAYS_READ * US_PER_DAY)
    delivered = lately & closed & (columns.outcome == DELIVERED)
    waiting = lately & ~closed
    ended = np.sort((columns.closed_us[delivered] - columns.allocated_us[delivered]) / US_PER_DAY)
    if len(ended) < MIN_LEADS:
        return np.array([math.exp(prior.inv_cdf(p)) for p in LEAD_POINTS])
    censored = np.sort((epoch_us - columns.allocated_us[waiting]) / US_PER_DAY)
    times, first = np.unique(ended, return_index=True)
    events = np.diff(np.append(first, len(ended)))
    at_risk = (len(ended) - first) + (len(censored) - np.searchsorted(censored, times, side="left"))
    seen = 1 - np.cumprod(1 - events / at_risk)  # the share handed over within each lead seen
    longest, reached = float(times[-1]), float(seen[-1])
    beyond = prior.cdf(math.log(longest))
    out = []
    for p in LEAD_POINTS:
        if p < reached:
            out.append(float(times[np.searchsorted(seen, p)]))
        else:
            tail = beyond + (p - reached) / (1 - reached) * (1 - beyond) if reached < 1 else 1.0
            out.append(max(longest, math.exp(prior.inv_cdf(min(tail, 1 - 1e-9)))))
    return np.array(out)


def _observed(columns: Columns, placed: npt.NDArray[np.bool_], closed: npt.NDArray[np.bool_],
              allocated: npt.NDArray[np.bool_], epoch_us: int, lead: float, hidden_share: float | None) -> Observed:
    """The lane's allocations a day before the epoch. The share of cars allocated without a demand is that of
    the open orders with a car (`hidden_share`, from the queue), or else of the last deliveries."""
    start = epoch_us - HISTORY_DAYS * US_PER_DAY

    def per_day(times: I64) -> F64:
        inside = times[(times >= start) & (times < epoch_us)]
        return np.bincount((inside - start) // US_PER_DAY, minlength=HISTORY_DAYS)[:HISTORY_DAYS].astype(np.float64)

    delivered = closed & (columns.outcome == DELIVERED)
    unasked = delivered & ~allocated
    lately = columns.closed_us >= epoch_us - UNASKED_DAYS * US_PER_DAY
    count = int((delivered & lately).sum())
    if count >= MIN_LEADS:
        share = float((unasked & lately).sum()) / count
    else:  # too few deliveries to say: all without a demand if no car was ever demanded
        share = 1.0 if not allocated.any() and unasked.any() else 0.0
    if hidden_share is not None and share < UNREADABLE:
        share = hidden_share
    first = int(columns.placed_us[placed].min()) if placed.any() else epoch_us
    open_days = (epoch_us - first) // US_PER_DAY  # whole days: the first, partial, one says little
    return Observed(per_day(columns.allocated_us[allocated]),
                    per_day(columns.closed_us[unasked] - int(lead * US_PER_DAY)), share, lead, open_days)


def _waits(columns: Columns, placed: npt.NDArray[np.bool_], closed: npt.NDArray[np.bool_],
           allocated: npt.NDArray[np.bool_], epoch_us: int, lead: float) -> Waits:
    """Each placed order's time at risk of cancelling at the epoch, and whether it ended in a customer's cancel."""
    served_first = allocated & (~closed | (columns.allocated_us <= columns.closed_us))
    unasked = closed & ~allocated & (columns.outcome == DELIVERED)
    end = np.where(served_first, columns.allocated_us,
                   np.where(unasked, columns.closed_us - int(lead * US_PER_DAY),
                            np.where(closed, columns.closed_us, epoch_us)))
    gave_up = closed & ~served_first & (columns.outcome == GAVE_UP)
    days = np.maximum(end - columns.placed_us, 0)[placed] / US_PER_DAY
    return waits_of(days, gave_up[placed])


def _layout(columns: Columns, open_: npt.NDArray[np.bool_], allocated: npt.NDArray[np.bool_], policy: Policy,
            epoch_us: int) -> _Layout:
    rows = np.flatnonzero(open_)
    placed, rank = columns.placed_us[rows], columns.trim_rank[rows]
    alloc = np.where(allocated[rows], columns.allocated_us[rows], NEVER)
    paid = (columns.paid_us[rows] != NEVER) & (columns.paid_us[rows] < epoch_us)
    # The policy's key (`zone` first, then first come), and its tiers: the groups served first come, first
    # served among themselves (a trim under high-trim-first, paid or not under paid-first; everyone otherwise).
    tier = np.zeros(len(rows), dtype=np.int64)
    if isinstance(policy, HighTrimFirst):
        zone = tier = -rank
    elif isinstance(policy, PaidFirst):
        zone = tier = np.where(paid, 0, 1)
    elif isinstance(policy, BoundedOvertake):
        before = columns.placed_us < epoch_us
        ordinal = np.searchsorted(np.sort(columns.placed_us[before]), placed)
        zone = ordinal - policy.k * np.minimum(rank, policy.top_rank) // policy.top_rank
    else:
        zone = tier
    # Queue order by the policy's key; ties by the facts themselves, so the rows' order never shows.
    sequence = np.lexsort((alloc, rank, placed, zone))
    alloc, placed, rank, zone, tier = alloc[sequence], placed[sequence], rank[sequence], zone[sequence], tier[sequence]
    paid = paid[sequence]
    hidden_share = _hidden(alloc, paid, tier)
    waiting_place = alloc == NEVER
    waiting = np.cumsum(waiting_place)
    ages = (epoch_us - placed[waiting_place]) / US_PER_DAY
    arrivals = _arrivals(columns, epoch_us)
    if isinstance(policy, HighTrimFirst):
        ranks = np.unique(np.concatenate((rank[waiting_place], arrivals.ranks)))[::-1]
        klass = np.searchsorted(-ranks, -rank)
        inflow = np.stack([arrivals.cumulative(arrivals.ranks > r) for r in ranks]) if len(ranks) else _none()
    elif isinstance(policy, PaidFirst):
        unpaid = waiting_place & ~paid
        behind = int(unpaid.sum()) - np.cumsum(unpaid)
        chunk = np.minimum(np.cumsum(unpaid) * PAID_FIRST_CLASSES // max(int(unpaid.sum()), 1), PAID_FIRST_CLASSES - 1)
        klass = np.where(unpaid, 1 + chunk, 0)
        rate = _prepay_rate(columns, epoch_us, int(unpaid.sum()))
        days = np.arange(1, HORIZON_DAYS + 1, dtype=np.float64)
        jumpers = [float(np.mean(behind[klass == 1 + c])) if np.any(klass == 1 + c) else 0.0
                   for c in range(PAID_FIRST_CLASSES)]
        inflow = np.stack([np.zeros(HORIZON_DAYS)] + [b * (1 - np.exp(-rate * days)) for b in jumpers])
    else:
        klass = np.zeros(len(rows), dtype=np.int64)
        inflow = _none()
    return _Layout(alloc, waiting, np.where(waiting_place, klass, -1), ages, inflow, hidden_share)


def _hidden(alloc: I64, paid: npt.NDArray[np.bool_], tier: I64) -> float | None:
    """Give a car to each order paid in full that waits ahead of an order with a car in its tier: its own car
    came without a demand, when the next one's did (`alloc` is changed). The share of the cars that did so,
    or None when too few orders have a car to say."""
    served = np.flatnonzero(alloc != NEVER)
    hidden: list[npt.NDArray[np.intp]] = []
    for level in np.unique(tier[served]).tolist():
        mine = served[tier[served] == level]
        ahead = np.flatnonzero((alloc == NEVER) & paid & (tier == level) & (np.arange(len(alloc)) < mine[-1]))
        alloc[ahead] = alloc[mine[np.searchsorted(mine, ahead)]]
        hidden.append(ahead)
    count = sum(len(h) for h in hidden)
    return count / (count + len(served)) if len(served) >= MIN_LEADS else None


def _none() -> F64:
    return np.zeros((1, HORIZON_DAYS))


@dataclass(frozen=True)
class _Arrivals:
    """Orders expected to be placed from the epoch on, by trim rank."""

    ranks: I64
    per_day: F64
    """Per rank: orders a day at the epoch."""
    decay: float
    """Per day."""

    def cumulative(self, chosen: npt.NDArray[np.bool_]) -> F64:
        days = np.arange(1, HORIZON_DAYS + 1, dtype=np.float64)
        total = float(self.per_day[chosen].sum())
        return total * (1 - self.decay**days) / (1 - self.decay) if self.decay < 1 else total * days


def _arrivals(columns: Columns, epoch_us: int) -> _Arrivals:
    """The last four weeks' placements, the lane's first day left out (a launch's rush says nothing about
    what follows): the last week's daily median by rank, falling as the weeks' trend says (weighed against
    a prior of halving every ARRIVAL_HALF_LIFE days; never rising)."""
    placed = columns.placed_us[columns.placed_us < epoch_us]
    first_day = int(placed.min()) // US_PER_DAY * US_PER_DAY + US_PER_DAY if len(placed) else epoch_us
    start = max(epoch_us - ARRIVAL_DAYS * US_PER_DAY, first_day)
    recent = (columns.placed_us >= start) & (columns.placed_us < epoch_us)
    ranks = np.unique(columns.trim_rank[recent])
    days = max((epoch_us - start) // US_PER_DAY, 0)
    if days == 0 or not len(ranks):
        return _Arrivals(np.zeros(0, dtype=np.int64), np.zeros(0), 1.0)
    day = (columns.placed_us[recent] - start) // US_PER_DAY
    counts = np.stack([np.bincount(day[columns.trim_rank[recent] == r], minlength=days)[:days] for r in ranks])
    week = min(days, 7)
    per_day = np.median(counts[:, -week:], axis=1).astype(np.float64)
    prior = -math.log(2) / ARRIVAL_HALF_LIFE
    slope = prior
    totals = counts.sum(axis=0)
    if days >= 7 and totals.min() > 0:
        # Theil-Sen (the median of the slopes between every two days): a partial first day does not tilt it.
        logs = np.log(totals)
        i, j = np.triu_indices(days, 1)
        fitted = float(np.median((logs[j] - logs[i]) / (j - i)))
        slope = min((fitted * days + prior * 7) / (days + 7), 0.0)
    return _Arrivals(ranks, per_day, math.exp(slope))


def _prepay_rate(columns: Columns, epoch_us: int, unpaid: int) -> float:
    """Under paid-first: the share of waiting, unpaid customers who pay in full each day (last two weeks)."""
    start = epoch_us - 14 * US_PER_DAY
    paid = columns.paid_us
    jumped = (paid >= start) & (paid < epoch_us) & ((columns.allocated_us == NEVER) | (columns.allocated_us > paid))
    jumped &= paid > columns.placed_us
    return float(jumped.sum()) / max(unpaid * 14, 1)


def _heads(cars: F64, layout: _Layout, still_waiting: Callable[[F64, float], F64], target: float) -> F64:
    """(classes, R, days + 1): how far each class's head has moved through the waiting places at each day's end
    (once every head is past `target`, where they go on to does not matter: they stay there)."""
    classes, days = layout.inflow.shape[0], cars.shape[1]
    free = np.cumsum(cars, axis=1)[None, :, :] - layout.inflow[:, None, :days]
    free = np.maximum(np.maximum.accumulate(free, axis=2), 0.0)
    moves = np.diff(free, axis=2, prepend=0.0)
    ages = layout.ages if len(layout.ages) else np.zeros(1)
    last = len(layout.ages) - 1
    head = np.zeros((classes, cars.shape[0]))
    out = np.zeros((classes, cars.shape[0], days + 1))
    for day in range(days):
        if head.min() > last:  # every head is past the orders waiting at the epoch: nobody left to cancel
            out[:, :, day + 1:] = head[:, :, None] + np.cumsum(moves[:, :, day:], axis=2)
            break
        at = np.minimum(head, max(last, 0)).astype(np.int64)
        share = np.where(head > last, 1.0, np.maximum(still_waiting(ages[at], day + 0.5), 1e-9))
        head = head + moves[:, :, day] / share
        out[:, :, day + 1] = head
        if head.min() >= target:
            out[:, :, day + 2:] = head[:, :, None]
            break
    return out


def _reached(heads: F64, grid: F64) -> F64:
    """(R, len(grid)): the day (fractional, after the epoch) each replication's head reaches each grid point;
    inf if never."""
    out = np.full((heads.shape[0], len(grid)), np.inf)
    for r, path in enumerate(heads):
        index = np.searchsorted(path, grid, side="left")
        inside = (index < len(path)) & (index > 0)
        i = index[inside]
        out[r, inside] = i - 1 + (grid[inside] - path[i - 1]) / (path[i] - path[i - 1])
        out[r, index == 0] = 0.0
    return out


def _percentiles(days: F64, leads: F64) -> F64:
    """(3, points): the QUANTILES of the day a car comes: a replication's allocation day (rows of `days`; inf:
    never) plus a lead independent of it (`leads`, at LEAD_POINTS probabilities), the lead's distribution
    mixed over the replications exactly. Each quantile lies between the earliest and the latest allocation
    plus the lead's own quantile; bisection finds it there to within RESOLUTION_DAYS."""
    finite = np.isfinite(days)
    share = finite.mean(axis=0)
    earliest = np.where(finite, days, np.inf).min(axis=0, initial=np.inf)
    latest = np.where(finite, days, -np.inf).max(axis=0, initial=-np.inf)
    out = []
    for q in QUANTILES:
        reached = share * LEAD_POINTS[-1] >= q
        own = float(np.interp(q, LEAD_POINTS, leads))
        lo = np.where(reached, earliest + own, 0.0)
        hi = np.where(reached, latest + np.where(share == 1.0, own, leads[-1]), 0.0)
        steps = math.ceil(math.log2(max(float((hi - lo).max(initial=0.0)), RESOLUTION_DAYS) / RESOLUTION_DAYS))
        for _ in range(steps):
            mid = (lo + hi) / 2
            below = np.interp(mid - days, leads, LEAD_POINTS, left=0.0, right=1.0).mean(axis=0) < q
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        out.append(np.where(reached, (lo + hi) / 2, np.inf))
    return np.stack(out)


def _allocated_bands(allocated_us: I64, leads: F64, epoch_us: int) -> I64:
    """An allocated order's band: its allocation plus the lead, given the lead is past what has elapsed."""
    elapsed = (epoch_us - allocated_us) / US_PER_DAY
    below = np.searchsorted(leads, elapsed, side="right") / len(leads)
    out = []
    for q in QUANTILES:
        target = np.minimum(below + q * (1 - below), 1.0)
        lead = np.interp(target, (np.arange(len(leads)) + 0.5) / len(leads), leads)
        out.append(np.maximum(lead - elapsed, 0.0))
    return _times(epoch_us, np.stack(out))
