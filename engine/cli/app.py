"""The `orderbank` command: thin adapters from the terminal to the core and the engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from orderbank.engine.cli import stream as stream_cli
from orderbank.engine.kafka.security import KafkaSecurity
from orderbank.engine.kafka.source import KafkaSource
from orderbank.projections.bank import BankSettings, OrderBank, canonical
from orderbank.projections.codec import Rejection, decode
from orderbank.projections.events import EVENT_TYPES
from orderbank.projections.policies import REGISTRY, parse_policy
from orderbank.projections.schema import PROJECTIONS
from orderbank.replay import job
from orderbank.replay.compare import DEFAULT_POLICIES
from orderbank.replay.compare import Settings as ReplaySettings
from orderbank.replay.logfile import read_lines, write_docs
from orderbank.replay.render import print_snapshot
from orderbank.replay.source import FileSource, LineSource
from orderbank.replay.synth import generate, preset

T = TypeVar("T")
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


def _policy_option(spec: str) -> BankSettings:
    try:
        return BankSettings(policy=parse_policy(spec))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def synth(
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write; .gz compresses")],
    orders: Annotated[int | None, typer.Option(help="orders in the launch (default: the preset's)")] = None,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same bytes")] = 1,
    preset_name: Annotated[str, typer.Option("--preset", help="small or yu7")] = "small",
) -> None:
    """Write a seeded synthetic launch history as JSON lines."""
    scenario = preset(preset_name, orders)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"synth {scenario.name}", total=None)
        count = write_docs(output, _advancing(progress, task, generate(scenario, seed)))
    console.print(f"wrote {count:,} events for {scenario.orders:,} orders to {output}")


def _advancing(progress: Progress, task: TaskID, items: Iterable[T]) -> Iterator[T]:
    for item in items:
        progress.advance(task)
        yield item


def fold_log(log: Path, settings: BankSettings) -> tuple[OrderBank, list[tuple[int, Rejection]]]:
    """Fold a log file with a progress bar; returns the bank and the rejected lines."""
    bank = OrderBank(settings)
    rejected: list[tuple[int, Rejection]] = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"fold {log.name}", total=None)
        for number, line in enumerate(read_lines(log), start=1):
            event = decode(line)
            outcome = event if isinstance(event, Rejection) else bank.apply(event)
            if isinstance(outcome, Rejection):
                if isinstance(event, Rejection):
                    bank.rejections[outcome.reason.value] += 1
                rejected.append((number, outcome))
            if number % 4096 == 0:
                progress.update(task, completed=number)
    return bank, rejected


@app.command()
def fold(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines event log")],
    policy: Annotated[str, typer.Option(help="ordering policy, e.g. fifo or bounded-overtake:k=500")] = "fifo",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the canonical snapshot here")] = None,
) -> None:
    """Fold an event log and print the projections."""
    bank, rejected = fold_log(log, _policy_option(policy))
    for number, rejection in rejected[:20]:
        err.print(f"line {number}: {rejection.reason.value} ({rejection.rule}): {rejection.message}")
    if len(rejected) > 20:
        err.print(f"... and {len(rejected) - 20:,} more rejected lines")
    snap = bank.snapshot()
    print_snapshot(console, snap, bank.stats())
    if json_out is not None:
        json_out.write_bytes(canonical(snap))
        console.print(f"snapshot written to {json_out}")


@app.command()
def policies() -> None:
    """List the ordering policies."""
    table = Table("policy", "what it does", title="Ordering policies")
    for name, factory in REGISTRY.items():
        table.add_row(name, factory().describe())
    console.print(table)


def schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event and projection, by file name."""
    models = [*EVENT_TYPES, *PROJECTIONS]
    return {f"{model.__name__}.json": model.model_json_schema() for model in models}


@app.command()
def schema(output: Annotated[Path, typer.Option("-o", "--output")] = Path("schemas")) -> None:
    """Write JSON Schema for every event and projection."""
    output.mkdir(parents=True, exist_ok=True)
    for name, doc in schemas().items():
        (output / name).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {len(schemas())} schemas to {output}/")


def _replay_settings(policy: list[str] | None, replications: int, seed: int, patience: str) -> ReplaySettings:
    settings = ReplaySettings(tuple(policy) if policy else DEFAULT_POLICIES, replications, seed, patience)
    try:
        settings.parsed()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return settings


@app.command()
def demo(
    seed: int = 1,
    replications: Annotated[int, typer.Option(help="seeds per policy")] = 3,
    output: Annotated[Path, typer.Option("-o", "--output", help="report directory")] = Path("report"),
) -> None:
    """The main job on the embedded default: synth the yu7 launch, replay it under every policy, report."""
    try:
        job.demo(seed, _replay_settings(None, replications, seed, "km"), output, console, err)
    except KeyboardInterrupt:
        err.print("interrupted: no report written")
        raise typer.Exit(130) from None


@app.command()
def replay(
    log: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False,
                                               help="JSON lines event log (.jsonl, .jsonl.gz)")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        help="repeatable: fifo, high-trim-first, paid-first, bounded-overtake:k=500 (default: all four)")] = None,
    replications: Annotated[int, typer.Option(help="seeds per policy; means get 95% intervals")] = 3,
    seed: Annotated[int, typer.Option(help="first seed; same log and seed, same summary.json")] = 1,
    patience: Annotated[str, typer.Option(help="patience estimator: km (Kaplan-Meier) or weibull")] = "km",
    output: Annotated[Path, typer.Option("-o", "--output", help="report directory")] = Path("report"),
    topic: Annotated[str | None, typer.Option(help="replay a Kafka topic instead of a file")] = None,
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers, with --topic")] = "127.0.0.1:9092",
    since: Annotated[datetime | None, typer.Option(help="with --topic: from this time (UTC) on, not the earliest")]
    = None,
) -> None:
    """Replay a log (a file, or a Kafka topic) under ordering policies and compare them with what happened."""
    if (log is None) == (topic is None):
        raise typer.BadParameter("give either LOG or --topic")
    source: LineSource = FileSource(log) if log is not None else KafkaSource(
        bootstrap, str(topic), since.replace(tzinfo=UTC) if since and since.tzinfo is None else since,
        KafkaSecurity.from_env())
    try:
        job.replay_log(source, _replay_settings(policy, replications, seed, patience), output, console, err)
    except KeyboardInterrupt:
        err.print("interrupted: no report written")
        raise typer.Exit(130) from None


stream_cli.register(app)  # broker, produce, worker, watch, up (orderbank.engine.cli.stream)


def main() -> None:
    app()
