"""The records of the topics a worker writes, as pydantic models: what their consumers can rely on.

The publisher (orderbank.engine.stream.publish) builds these records as msgspec Structs and plain dicts for
speed; these models document their shapes and give `orderbank schema` their JSON Schemas, and a test
validates real records against them. Pool rows and cancellation figures reuse the projections' published
shapes (orderbank.projections.schema).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orderbank.projections.codec import Reason
from orderbank.projections.orders import Status
from orderbank.projections.schema import Basis, Overall, PoolBucket, QueueEntry


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Record):
    """An order's record on the positions topic (key: order_id). An order in the queue names the bucket of
    positions that holds its exact place, and the ETA band of its place when the record was written; one
    that left it (delivered, cancelled) has no position, bucket or ETA. Exact positions are in the lane
    snapshots of the queue topic."""

    as_of: str = Field(description="the latest event time folded by the shard (UTC, ISO 8601)")
    bucket: tuple[int, int] | None = Field(description="[lo, hi]: the order's position is in lo..hi")
    eta: str | None = Field(description="median delivery time of the position the record was published with "
                                        "(UTC, ISO 8601, to the hour)")
    eta_basis: Basis | None = Field(description="what the lane's ETA forecast rests on; null once the order left")
    eta_high: str | None = Field(description="90th percentile of the delivery time of that position")
    eta_low: str | None = Field(description="10th percentile of the delivery time of that position")
    lane: str
    open_in_lane: int = Field(ge=0, description="open orders in the lane")
    order_id: str
    position: int | None = Field(ge=1, description="exact 1-based position when the record was published")
    status: Status


class LaneHeader(_Record):
    """A lane's snapshot header on the queue topic (key: ["lane", lane]); its positions follow in `pages`
    page records."""

    lane: str
    open: int = Field(ge=0)
    throughput_per_day: float = Field(ge=0, description="deliveries per day over the trailing window")
    eta_basis: Basis = Field(description="what the lane's ETA forecast rests on (docs/eta.md)")
    eta_as_of: str = Field(description="when the forecast was refreshed: a UTC midnight, or a plan's declaration")
    eta_note: str | None = Field(description="why there is no ETA, when there is none")
    pages: int = Field(ge=0, description="page records of this snapshot, keys ['page', lane, 0..pages-1]")
    policy: str = Field(description="the ordering policy the positions follow")
    window_days: int = Field(description="trailing window of the throughput, days")
    as_of: str | None = Field(description="the latest event time folded (UTC, ISO 8601)")


class LanePage(_Record):
    """A page of a lane's positions on the queue topic (key: ["page", lane, i]). A page past the lane's
    current `pages` is deleted by a tombstone (a null value)."""

    positions: dict[str, QueueEntry] = Field(description="by order_id")


class PoolRow(PoolBucket):
    """A row of the pool topic (key: [lane, trim, cohort, currency]): the prepayment pool of one bucket."""


class OverallRate(Overall):
    """A shard's overall cancellation figures on the cancellations topic (key: [shard, "overall"])."""


class DeadLetterHeaders(_Record):
    """The Kafka headers of a dead letter: why the input message was rejected, where it came from and
    its key. Each value is UTF-8 text (the key: the bytes it came with); one whose value is unknown is
    left out."""

    model_config = ConfigDict(populate_by_name=True)
    reason: Reason = Field(alias="orderbank.reason")
    rule: str = Field(alias="orderbank.rule", description="the rule the message broke")
    field: str | None = Field(None, alias="orderbank.field", description="dotted path of the field at fault")
    message: str = Field(alias="orderbank.message", description="what is wrong, in words")
    order_id: str | None = Field(None, alias="orderbank.order_id")
    event_id: str | None = Field(None, alias="orderbank.event_id")
    source_topic: str = Field(alias="orderbank.source.topic", description="the input topic")
    source_partition: str = Field(alias="orderbank.source.partition", pattern=r"^[0-9]+$")
    source_offset: str = Field(alias="orderbank.source.offset", pattern=r"^[0-9]+$")
    key: str | None = Field(None, alias="orderbank.key",
                            description="the input message's key as it came (left out when it had none)")
