"""The Faust app factory. `faust -A orderbank.engine.stream.app worker` and `orderbank worker` both run it.

Importing this module does nothing: `create_app(settings)` builds an app (no connection is made
until a worker starts it), and the module attribute `app`, which `faust -A` looks up, is built on
first access from `Settings.from_env()` (ORDERBANK_* variables). Every Kafka client of the app uses
the settings' security (ORDERBANK_KAFKA_*); a worker first checks it can connect and log in, so wrong
credentials stop it at once with a clear message instead of retrying forever. Its Kafka transport is
orderbank.engine.kafka.transport's, whose consumer waits at most 100 ms on a fetch.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

import faust

from orderbank.engine.kafka.security import KafkaSecurityError, check_connection
from orderbank.engine.kafka.topics import TopicMismatch, ensure
from orderbank.engine.kafka.transport import Transport
from orderbank.engine.settings import Settings
from orderbank.engine.stream import agents, pages, views
from orderbank.engine.stream.collector import tune_gc

APP = __name__
"""What `faust -A` is given to run this app: `faust -A orderbank.engine.stream.app worker`."""

log = logging.getLogger(__name__)
MiB = 1024 * 1024
STOP_DEADLINE_S = 30.0
"""How long a stopping worker may take. Faust's stop never ends once the broker is gone (its
consumer waits for the group coordinator for ever); everything a worker acknowledged is durable in
Kafka, so past this it exits (code EXIT_STOP_DEADLINE) and a restart carries on from the changelog."""
EXIT_STOP_DEADLINE = 3


def create_app(settings: Settings | None = None) -> faust.App:
    """A Faust app with the engine's table, agent, services and web views installed."""
    settings = settings or Settings.from_env()
    settings.state_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = EngineApp(
        settings,
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.servers()],
        broker_credentials=settings.security.faust_credentials(),
        autodiscover=False,
        processing_guarantee=settings.processing_guarantee,
        store=settings.store,
        datadir=str(settings.state_dir),
        topic_partitions=settings.shard_partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 4,
        # A lanes message is a frame of up to thousands of events: few, large messages. Faust stops
        # fetching a partition whose buffer reaches 26 frames and fetches it again at 13 (mode's
        # FlowControlQueue: maxsize / 1.25 and maxsize * 0.4), so ~60,000 events keep the shard busy
        # while the next fetch comes. Frames are <= 2 MiB (frame_bytes): <= 52 MiB buffered.
        stream_buffer_maxsize=32,
        consumer_max_fetch_size=8 * MiB,
        producer_max_request_size=8 * MiB,
        web_bind=settings.web_host,
        web_host=settings.advertised_url.split("//", 1)[1].rsplit(":", 1)[0],
        web_port=settings.web_port,
        canonical_url=settings.advertised_url,
        # Faust's own pages expose table contents and internals; the engine serves its own views.
        web_router_enabled=False, web_tables_enabled=False, web_graph_enabled=False, web_stats_enabled=False,
    )
    runtime = agents.install(app, settings)
    pages.install(app, runtime, views.install(app, runtime))
    return app


class EngineApp(faust.App):
    """A Faust app that checks its connection and credentials before any client starts, and reads
    Kafka through the engine's transport."""

    def __init__(self, settings: Settings, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.settings = settings

    async def stop(self) -> None:
        deadline = threading.Timer(STOP_DEADLINE_S, _exit_past_deadline)
        deadline.daemon = True
        deadline.start()
        try:
            await super().stop()
        finally:
            deadline.cancel()

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        tune_gc()
        try:
            await check_connection(self.settings.bootstrap_servers, self.settings.security)
        except KafkaSecurityError as exc:
            # The message names the problem and the variables to check; it never holds the password.
            log.error("cannot start: %s", exc)
            sys.exit(f"orderbank worker: {exc}")
        # Faust ignores a subscribed topic that does not exist yet and may not assign it for minutes.
        try:
            await ensure(self.settings)
        except TopicMismatch as exc:
            log.error("cannot start: %s", exc)
            sys.exit(f"orderbank worker: {exc}")
        await super().on_first_start()


def _exit_past_deadline() -> None:
    log.error("could not stop within %.0f s (is the broker reachable?): exiting; what this worker "
              "acknowledged is in Kafka", STOP_DEADLINE_S)
    logging.shutdown()
    os._exit(EXIT_STOP_DEADLINE)


_app: faust.App | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = create_app()
    return _app
