"""Prometheus metrics of one worker, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
