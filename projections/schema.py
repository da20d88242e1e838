"""The published shape of each projection, as pydantic models.

`OrderBank.snapshot()` builds plain dicts for speed; these models document the shape, give
`orderbank schema` its JSON Schema, and a test validates real snapshots against them. A `...Doc` is the
document a reducer publishes (`QueueDoc` is what `queue.QueueProjection` snapshots to).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Basis = Literal["blended", "plan", "observed", "none"]


class QueueEntry(_Strict):
    position: int = Field(ge=1, description="1-based place in the lane under the active policy")
    eta_low: str | None = Field(description="10th percentile of the delivery time (UTC, ISO 8601, to the hour)")
    eta: str | None = Field(description="median delivery time (UTC, ISO 8601, to the hour); null: no forecast, "
                                        "or not within three years")
    eta_high: str | None = Field(description="90th percentile of the delivery time: 80% of cars come in the band")


class LaneQueue(_Strict):
    lane: str
    open: int = Field(ge=0)
    throughput_per_day: float = Field(ge=0, description="deliveries per day over the trailing window")
    eta_basis: Basis = Field(description="what the ETA forecast rests on: the plan blended with the allocations "
                                         "observed, the plan alone, the observed allocations alone, or nothing")
    eta_as_of: str = Field(description="when the forecast was refreshed: a UTC midnight, or a plan's declaration")
    eta_note: str | None = Field(description="why there is no ETA, when there is none")
    positions: dict[str, QueueEntry] = Field(description="by order_id")


class QueueDoc(_Strict):
    policy: str
    window_days: int
    lanes: dict[str, LaneQueue]


class PoolFigures(_Strict):
    open_orders: int
    deposits: int = Field(description="deposits on open orders, minor units")
    balances: int = Field(description="payments after the deposit on open orders")
    refunds_owed: int = Field(description="still owed back to cancelled orders")
    refunds_paid: int
    held: int = Field(description="deposits + balances + refunds_owed: customers' cash held")
    forfeited: int = Field(description="kept from cancelled orders")
    realised: int = Field(description="paid on delivered cars")
    demanded_outstanding: int = Field(description="demanded, not yet received, on open orders")
    overdue_orders: int
    overdue_amount: int


class PoolBucket(PoolFigures):
    lane: str
    trim: str
    cohort: str = Field(description="ISO week of placed_at, e.g. 2025-W26")
    currency: str


class PoolDoc(_Strict):
    buckets: list[PoolBucket]
    totals: dict[str, PoolFigures] = Field(description="by currency")


class WindowRate(_Strict):
    window_days: int
    trim: str = Field(description="a trim, or * for all")
    placed: int
    cancelled: int
    rate: float | None = Field(description="cancelled / placed in the window; null if none placed")


class CohortRate(_Strict):
    cohort: str
    trim: str
    placed: int
    cancelled: int
    delivered: int
    open: int
    share_cancelled: float | None


class Overall(_Strict):
    placed: int
    cancelled: int
    rate: float | None


class CancellationDoc(_Strict):
    windows: list[WindowRate]
    cohorts: list[CohortRate]
    overall: Overall


class Snapshot(_Strict):
    """Every projection of the order bank at `as_of` (the latest occurred_at folded)."""

    as_of: str | None
    queue: QueueDoc
    pool: PoolDoc
    cancellations: CancellationDoc


DOCS: tuple[type[BaseModel], ...] = (QueueDoc, PoolDoc, CancellationDoc, Snapshot)
