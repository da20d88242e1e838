"""Production plans: the cars a day a maker declares it will build, kept per plan stream.

A plan stream is a stream id of its own (e.g. "plan:YU7") whose events are `ProductionPlanned`, seq 1,
2, ...: its first plan fixes what it plans (a model, or one trim of it) and each later one supersedes
the earlier ones. The bank keeps every plan with the time it was declared, because a lane's forecast
reads the plans in force at its refresh time, whichever order the shards folded them in. A stream id is
an order's or a plan stream's, never both: `plan_rule` says why a plan event is refused, `order_rule`
why an order's first event is.

A plan lands in a lane as an order would: its model's lane, or (lanes by model and trim) its trim's
lane; a model-wide plan under lanes by trim plans the lane named after the model alone, which holds no
orders (plan each trim instead). A lane's schedule is the sum, over the scopes planned into it, of each
scope's latest plan.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from orderbank.projections.codec import Reason, Rejection
from orderbank.projections.events import Event, ProductionPlanned
from orderbank.projections.orders import US_PER_DAY, micros

Scope = tuple[str, str | None]
"""(model, trim or None for the whole model)."""


class Step(msgspec.Struct, array_like=True, frozen=True, gc=False):
    starts_us: int
    cars_per_day: int


class Declared(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One plan as the bank keeps it: when it was declared, its steps by start time, the lead it states."""

    declared_us: int
    seq: int
    steps: tuple[Step, ...]
    lead_days: int | None = None


class PlanStream(msgspec.Struct, array_like=True, gc=False):
    """A plan stream: what it plans and every plan it declared, in seq order."""

    stream_id: str
    model: str
    trim: str | None
    plans: list[Declared] = msgspec.field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.plans[-1].seq if self.plans else 0

    @property
    def scope(self) -> Scope:
        return (self.model, self.trim)

    def declare(self, event: ProductionPlanned) -> Declared:
        steps = tuple(sorted((Step(micros(step.starts_at), step.cars_per_day) for step in event.schedule),
                             key=lambda step: step.starts_us))
        declared = Declared(micros(event.occurred_at), event.seq, steps, event.delivery_lead_days)
        self.plans.append(declared)
        return declared

    def in_force(self, at_us: int) -> Declared | None:
        """The stream's latest plan declared at or before `at_us`."""
        return next((plan for plan in reversed(self.plans) if plan.declared_us <= at_us), None)


def stream_of(event: ProductionPlanned) -> PlanStream:
    return PlanStream(event.order_id, event.model, event.trim)


def plan_rule(stream: PlanStream | None, event: ProductionPlanned, is_order: bool) -> Rejection | None:
    """Why this plan event may not be applied to its stream (None: it may). Duplicates are the caller's."""

    def reject(reason: Reason, rule: str, message: str, field: str | None = None) -> Rejection:
        return Rejection(reason, rule, message, field, event.order_id, str(event.event_id))

    if is_order:
        return reject(Reason.ILLEGAL_TRANSITION, "plan_stream_not_order",
                      f"{event.order_id!r} is an order, not a plan stream", "order_id")
    if stream is None:
        if event.seq != 1:
            return reject(Reason.SEQ_GAP, "first_seq_is_1", f"a plan stream starts at seq 1, got {event.seq}", "seq")
        return None
    if event.seq != stream.last_seq + 1:
        return reject(Reason.SEQ_GAP, "seq_contiguous", f"expected seq {stream.last_seq + 1}, got {event.seq}", "seq")
    if (event.model, event.trim) != stream.scope:
        return reject(Reason.ILLEGAL_TRANSITION, "plan_scope_fixed",
                      f"plan stream {event.order_id!r} plans {stream.model} {stream.trim or '(all trims)'}")
    return None


def order_rule(event: Event, plans: dict[str, PlanStream]) -> Rejection | None:
    """An order may not take a plan stream's id."""
    if event.type == "OrderPlaced" and event.order_id in plans:
        return Rejection(Reason.ILLEGAL_TRANSITION, "order_not_plan_stream",
                         f"{event.order_id!r} is a plan stream, not an order", "order_id", event.order_id,
                         str(event.event_id))
    return None


def daily_cars(plans: list[Declared], bounds_us: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The cars the plans (one per scope, summed) schedule between consecutive `bounds_us`."""
    total = np.zeros(len(bounds_us), dtype=np.float64)
    for plan in plans:
        starts = np.array([step.starts_us for step in plan.steps], dtype=np.float64)
        rates = np.array([step.cars_per_day for step in plan.steps], dtype=np.float64) / US_PER_DAY
        # Cars built by each step's start, and by a time past every bound: the cumulative is piecewise linear.
        far = max(float(bounds_us[-1]), float(starts[-1])) + US_PER_DAY
        at = np.append(starts, far)
        built = np.concatenate(([0.0], np.cumsum(rates * np.diff(at))))
        total += np.interp(bounds_us.astype(np.float64), at, built, left=0.0)
    return np.diff(total)
