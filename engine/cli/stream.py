"""The streaming commands of `orderbank`: broker, produce, worker (watch: watch.py; up: up.py).

Every command reads `Settings.from_env()` (ORDERBANK_* variables) and its options override it; the broker is
found as orderbank.engine.cli.connect says, the same way for every command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn

from orderbank.engine.cli.connect import Bootstrap, Prefix, kafka_settings
from orderbank.engine.cli.failure import Commands
from orderbank.engine.cli.output import console, err, fail, print_rejected
from orderbank.engine.dev import broker as kafka
from orderbank.engine.settings import Settings
from orderbank.projections.bank import REJECTED_KEPT
from orderbank.projections.codec import Rejection
from orderbank.projections.errors import LogError
from orderbank.replay.logfile import read_lines
from orderbank.replay.terminal import Counts

broker_app = typer.Typer(cls=Commands, no_args_is_help=True,
                         help="Run a local Apache Kafka (KRaft) from Maven Central jars.")


def _started_by(status: kafka.BrokerStatus) -> str:
    return "`orderbank up`" if status.state is not None and status.state.parent.name == kafka.UP_DIR \
        else "`orderbank broker start`"


@broker_app.command("start")
def broker_start() -> None:
    """Start the local broker in the background (keeps the data of a previous run)."""
    status = kafka.running_local()
    if status is not None:
        console.print(f"broker already running at {status.bootstrap} (pid {status.pid}, started by "
                      f"{_started_by(status)})")
        return
    with console.status("starting Kafka (first run downloads the jars with mvn)..."):
        bootstrap = kafka.start_background()
    console.print(f"broker running at [bold]{bootstrap}[/]; stop it with `orderbank broker stop`")


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker."""
    if kafka.stop_background():
        console.print("broker stopped")
        return
    status = kafka.running_local()
    if status is None:
        console.print("no broker was running")
        return
    # `up` stops its broker itself when it stops, and a broker stopped under it would stop its worker.
    console.print(f"the broker at {status.bootstrap} is {_started_by(status)}'s: it stops when that stops (Ctrl-C)")
    raise typer.Exit(1)


@broker_app.command("status")
def broker_status() -> None:
    """Say whether a local broker runs, and where (exit status 1 if none does)."""
    status = kafka.running_local()
    if status is None:
        console.print("not running")
        raise typer.Exit(1)
    console.print(f"running at {status.bootstrap} (pid {status.pid}, started by {_started_by(status)})")


def produce(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines event log (.gz ok)")],
    rate: Annotated[float | None, typer.Option(help="events per second (default: as fast as possible)")] = None,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
) -> None:
    """Stream an event log into the input topic: validated, keyed by order_id, rate-limited."""
    settings = kafka_settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    produced = asyncio.run(_produce(settings, read_lines(log), rate))
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
    columns = (TextColumn("produce"), BarColumn(), Counts(), TextColumn("{task.fields[speed]}"))
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

    settings = kafka_settings(bootstrap_servers=bootstrap, topic_prefix=prefix, app_id=app_id, web_port=web_port,
                              worker_id=worker_id, ingest=ingest)
    app = create_app(settings)
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


def register(app: typer.Typer) -> None:
    """Add the streaming commands to the `orderbank` app."""
    app.add_typer(broker_app, name="broker")
    for command in (produce, worker):
        app.command()(command)

