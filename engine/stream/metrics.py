"""Prometheus metrics of one worker, in a registry of its own (served at /metrics): the technical ones (throughput,
lag, latency, failures), counted as the worker goes, and the business gauges (open orders, money held and overdue,
cancellations, dead letters), read off the banks the worker holds at each scrape."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from orderbank.engine.web.format import MINOR_DIGITS
from orderbank.projections.bank import OrderBank
from orderbank.projections.cancellations import ALL
from orderbank.projections.orders import US_PER_DAY

__all__ = ["CONTENT_TYPE", "Metrics"]

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ingested = Counter("orderbank_ingested_events", "Input messages forwarded to their shard", registry=r)
        self.applied = Counter("orderbank_events_applied", "Events applied to a bank", registry=r)
        self.duplicates = Counter("orderbank_duplicates_ignored", "Redelivered or repeated events ignored",
                                  registry=r)
        self.rejections = Counter("orderbank_rejections", "Events dead-lettered, by reason", ["reason"], registry=r)
        self.rereads = Counter("orderbank_lanes_rereads", "Seeks back to lanes frames a shard had not applied",
                               registry=r)
        self.recovery_rereads = Counter("orderbank_recovery_rereads",
                                        "Changelog partitions read again after a recovery stalled", registry=r)
        self.published = Counter("orderbank_published_records", "Projection records published",
                                 ["projection"], registry=r)
        self.lag = Gauge("orderbank_consumer_lag", "Messages not yet consumed, per topic partition",
                         ["topic", "partition"], registry=r)
        self.quiet = Gauge("orderbank_shard_quiet_seconds", "Seconds since the shard last applied a frame",
                           ["shard"], registry=r)
        self.frames = Counter("orderbank_frames", "Lanes frames by shard and outcome: applied, failed (raised, "
                              "read again), skipped (not a frame)", ["shard", "outcome"], registry=r)
        self.agent_crashes = Counter("orderbank_agent_crashes", "Exceptions that stopped the shards agent "
                                     "(Faust restarts it)", registry=r)
        self.publish_failures = Counter("orderbank_publish_failures", "Publishes of a shard that raised",
                                        registry=r)
        self.batch_seconds = Histogram("orderbank_batch_seconds",
                                       "Time to apply one frame and write its outputs", buckets=_SECONDS, registry=r)
        self.batch_events = Histogram("orderbank_batch_events", "Events per frame",
                                      buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000), registry=r)
        self.forward_seconds = Histogram("orderbank_forward_seconds",
                                         "Time to write one fetched batch's frames", buckets=_SECONDS, registry=r)

        self.open_orders = Gauge("orderbank_open_orders", "Orders waiting for a car, per lane", ["lane"], registry=r)
        self.pool_held = Gauge("orderbank_pool_held_major_units",
                               "Customers' money the maker holds (paid on open orders, refunds owed), in major units "
                               "of the currency (yuan for CNY)", ["currency"], registry=r)
        self.overdue = Gauge("orderbank_overdue_major_units",
                             "Balances demanded and unpaid past their due date, in major units of the currency",
                             ["currency"], registry=r)
        self.placed_28d = Gauge("orderbank_orders_placed_28d", "Orders placed in the 28 days up to the latest event",
                                registry=r)
        self.cancelled_28d = Gauge("orderbank_orders_cancelled_28d",
                                   "Orders cancelled in the 28 days up to the latest event", registry=r)
        self.cancel_rate_28d = Gauge("orderbank_cancellation_rate_28d",
                                     "Cancelled / placed over the 28 days up to the latest event (NaN: none placed)",
                                     registry=r)
        self.dead_letters = Gauge("orderbank_dead_letters",
                                  "Inputs dead-lettered, by reason, as the banks count them (since the log began, "
                                  "restarts included)", ["reason"], registry=r)

    def observe_banks(self, banks: Iterable[OrderBank]) -> None:
        """Set the business gauges to what the banks of this worker's shards say now: their sums, each money sum per
        currency, windows and overdue at the latest event any of them has seen."""
        banks = list(banks)
        now = max((bank.now_us for bank in banks), default=0)
        open_orders, held, overdue, dead = Tally[str](), Tally[str](), Tally[str](), Tally[str]()
        placed = cancelled = 0
        for bank in banks:
            open_orders.update({name: len(lane.open) for name, lane in bank.queue.lanes.items()})
            for currency, totals in bank.pool.snapshot(now)["totals"].items():
                held[currency] += totals["held"]
                overdue[currency] += totals["overdue_amount"]
            in_window = bank.cancellations.window(ALL, now - 28 * US_PER_DAY, now)
            placed, cancelled = placed + in_window[0], cancelled + in_window[1]
            dead.update(bank.rejections)
        for gauge, values in ((self.open_orders, open_orders), (self.pool_held, _major(held)),
                              (self.overdue, _major(overdue)), (self.dead_letters, dead)):
            gauge.clear()  # a lane or currency another worker took over is no longer this one's to report
            for label, value in values.items():
                gauge.labels(label).set(value)
        self.placed_28d.set(placed)
        self.cancelled_28d.set(cancelled)
        self.cancel_rate_28d.set(cancelled / placed if placed else float("nan"))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _major(minor: Tally[str]) -> dict[str, float]:
    """Sums in minor units per currency, in major units."""
    return {currency: amount / 10 ** MINOR_DIGITS.get(currency, 2) for currency, amount in minor.items()}
