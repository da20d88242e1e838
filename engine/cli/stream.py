"""The streaming commands of `orderbank`: broker, produce, worker, watch, up.

Every command reads `Settings.from_env()` (ORDERBANK_* variables) and its options override it.
Without a bootstrap server given, commands use the broker `orderbank broker start` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from orderbank.engine.cli.output import console, err, fail, print_rejected
from orderbank.engine.dev import broker as kafka
from orderbank.engine.settings import ENV_PREFIX, Settings, SettingsError
from orderbank.projections.bank import REJECTED_KEPT
from orderbank.projections.codec import Rejection
from orderbank.projections.errors import LogError
from orderbank.replay.logfile import read_lines

broker_app = typer.Typer(no_args_is_help=True, help="Run a local Apache Kafka (KRaft) from Maven Central jars.")

Bootstrap = Annotated[str | None, typer.Option("--bootstrap", help="Kafka host:port (default: the local broker)")]
Prefix = Annotated[str | None, typer.Option("--prefix", help="topic name prefix")]


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment and options; the local broker when none is named."""
    if overrides.get("bootstrap_servers") is None and not os.environ.get(ENV_PREFIX + "BOOTSTRAP_SERVERS"):
        status = kafka.status()
        if status.running:
            overrides["bootstrap_servers"] = status.bootstrap
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None


@broker_app.command("start")
def broker_start() -> None:
    """Start the local broker in the background (keeps the data of a previous run)."""
    status = kafka.status()
    if status.running:
        console.print(f"broker already running at {status.bootstrap} (pid {status.pid})")
        return
    with console.status("starting Kafka (first run downloads the jars with mvn)..."):
        bootstrap = kafka.start_background()
    console.print(f"broker running at [bold]{bootstrap}[/]; stop it with `orderbank broker stop`")


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker."""
    console.print("broker stopped" if kafka.stop_background() else "no broker was running")


@broker_app.command("status")
def broker_status() -> None:
    """Say whether the local broker runs, and where."""
    status = kafka.status()
    if status.running:
        console.print(f"running at {status.bootstrap} (pid {status.pid})")
    else:
        console.print("not running")
        raise typer.Exit(1)


def produce(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines event log (.gz ok)")],
    rate: Annotated[float | None, typer.Option(help="events per second (default: as fast as possible)")] = None,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
) -> None:
    """Stream an event log into the input topic: validated, keyed by order_id, rate-limited."""
    settings = settings_from(bootstrap_servers=bootstrap, topic_prefix=prefix)
    try:
        produced = asyncio.run(_produce(settings, read_lines(log), rate))
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    print_rejected(produced.rejected, produced.rejections)
    topic = f"{settings.topic_prefix}.events"
    if produced.failure is not None:
        fail("produce", produced.failure, f"; sent {produced.sent:,} events to {topic} before it")
    console.print(f"sent {produced.sent:,} events to {topic}; {produced.rejections:,} lines rejected, not sent")


@dataclass
class _Produced:
    """What `produce` did: events sent, lines rejected (the first `REJECTED_KEPT` kept, by number), and
    what stopped it before the end of the log, if anything did."""

    sent: int = 0
    rejections: int = 0
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)
    failure: LogError | None = None


async def _produce(settings: Settings, lines: Iterator[bytes], rate: float | None) -> _Produced:
    from orderbank.engine.kafka.producer import EventProducer

    produced = _Produced()
    columns = (TextColumn("produce"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"))
    async with EventProducer(settings) as producer:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("produce", total=None, speed="")
            started = time.monotonic()
            try:
                for number, line in enumerate(lines, start=1):
                    if not line:  # a blank line: numbered, not sent
                        continue
                    rejection = await producer.send(line)
                    if rejection is not None:
                        produced.rejections += 1
                        if len(produced.rejected) < REJECTED_KEPT:
                            produced.rejected.append((number, rejection))
                    if rate and number % 64 == 0:
                        ahead = number / rate - (time.monotonic() - started)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                    if number % 1024 == 0:
                        elapsed = max(time.monotonic() - started, 1e-9)
                        progress.update(task, completed=number, speed=f"{number / elapsed:,.0f} events/s")
            except LogError as exc:  # the events before it are sent all the same
                produced.failure = exc
            await producer.flush()
    produced.sent = producer.sent
    return produced


def worker(
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    app_id: Annotated[str | None, typer.Option(help="Faust app id (consumer group)")] = None,
    web_port: Annotated[int | None, typer.Option(help="port of the HTTP views")] = None,
    worker_id: Annotated[str | None, typer.Option(help="name of this worker")] = None,
    ingest: Annotated[str | None, typer.Option(help="process (its own, on another core) or inline")] = None,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning, error")] = "warning",
) -> None:
    """Run a Faust worker of the engine (same as `faust -A orderbank.engine.stream.app worker`)."""
    from faust.worker import Worker

    from orderbank.engine.stream.app import create_app

    settings = settings_from(bootstrap_servers=bootstrap, topic_prefix=prefix, app_id=app_id, web_port=web_port,
                             worker_id=worker_id, ingest=ingest)
    app = create_app(settings)
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


WATCHED = {"queue": "positions", "pool": "pool", "cancellations": "cancellations"}


def watch(
    what: Annotated[str, typer.Argument(help="queue, pool or cancellations")],
    order: Annotated[str | None, typer.Option(help="only this order (queue)")] = None,
    seconds: Annotated[float | None, typer.Option("--for", help="stop after this many seconds")] = None,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
) -> None:
    """Print a projection topic's records as they arrive (from its start), until Ctrl-C."""
    if what not in WATCHED:
        raise typer.BadParameter(f"what must be one of {', '.join(WATCHED)}, got {what!r}")
    from orderbank.engine.kafka.topics import TopicMismatch

    settings = settings_from(bootstrap_servers=bootstrap, topic_prefix=prefix)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_watch(settings, WATCHED[what], order, seconds))
    except TopicMismatch as exc:
        err.print(f"orderbank watch: {exc}")
        raise typer.Exit(2) from None


async def _watch(settings: Settings, projection: str, order: str | None, seconds: float | None) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from orderbank.engine.kafka.topics import Topics, check

    spec = getattr(Topics(settings), projection)
    if not await check(settings, [spec]):
        err.print(f"topic {spec.name} does not exist yet (is a worker running?)")
        return
    topic = spec.name
    consumer = AIOKafkaConsumer(**settings.kafka_kwargs(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(spec.partitions)]
        consumer.assign(tps)
        deadline = time.monotonic() + seconds if seconds is not None else None
        wanted = order.encode() if order is not None else None
        while deadline is None or time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=250)).values():
                for record in records:
                    if record.value is not None and (wanted is None or record.key == wanted):
                        console.print(_line(projection, record.key, record.value), highlight=False)
    finally:
        await consumer.stop()


def _line(projection: str, key: bytes, value: bytes) -> str:
    doc = orjson.loads(value)
    if projection == "positions":
        where = (f"position {doc['position']:,} of {doc['open_in_lane']:,}, eta {doc['eta']} "
                 f"({doc['eta_low']} .. {doc['eta_high']}, {doc['eta_basis']})"
                 if doc["position"] is not None else doc["status"])
        return f"{doc['as_of']}  {doc['order_id']}  {doc['lane']}  {where}"
    return f"{key.decode(errors='replace')}  {orjson.dumps(doc).decode()}"


def register(app: typer.Typer) -> None:
    """Add the streaming commands to the `orderbank` app."""
    app.add_typer(broker_app, name="broker")
    for command in (produce, worker, watch):
        app.command()(command)
    from orderbank.engine.cli.up import up  # up starts a broker, a worker and a producer: imported when run

    app.command()(up)

