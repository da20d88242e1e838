"""Commands over event logs and the core: synth, fold, policies, schema."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from orderbank.engine.cli.output import console, err, fail, print_rejected
from orderbank.projections.bank import BankSettings, OrderBank, canonical, fold_lines
from orderbank.projections.codec import Rejection
from orderbank.projections.errors import ConfigError, LogError
from orderbank.projections.events import EVENT_TYPES
from orderbank.projections.policies import REGISTRY, PolicyError, parse_policy
from orderbank.projections.schema import DOCS
from orderbank.replay.logfile import read_lines, write_docs
from orderbank.replay.render import print_snapshot
from orderbank.replay.synth import generate, preset

T = TypeVar("T")


def policy_option(spec: str) -> BankSettings:
    """A --policy option's bank settings, or a usage error naming the policy."""
    try:
        return BankSettings(policy=parse_policy(spec))
    except PolicyError as exc:
        raise typer.BadParameter(str(exc)) from None


def synth(
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write; .gz compresses")],
    orders: Annotated[int | None, typer.Option(help="orders in the launch (default: the preset's)")] = None,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same bytes")] = 1,
    preset_name: Annotated[str, typer.Option("--preset", help="small or yu7")] = "small",
) -> None:
    """Write a seeded synthetic launch history as JSON lines."""
    try:
        scenario = preset(preset_name, orders)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"synth {scenario.name}", total=None)
        count = write_docs(output, _advancing(progress, task, generate(scenario, seed)))
    console.print(f"wrote {count:,} events for {scenario.orders:,} orders to {output}")


def _advancing(progress: Progress, task: TaskID, items: Iterable[T], every: int = 1) -> Iterator[T]:
    """The items, advancing the task by `every` at every `every`-th (a bar update per line would slow a fold)."""
    for count, item in enumerate(items, start=1):
        if count % every == 0:
            progress.advance(task, every)
        yield item


def fold_log(log: Path, settings: BankSettings) -> tuple[OrderBank, list[tuple[int, Rejection]]]:
    """Fold a log file with a progress bar; returns the bank and the first rejected lines (`fold_lines`)."""
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"fold {log.name}", total=None)
        return fold_lines(_advancing(progress, task, read_lines(log), every=4096), settings)


def fold(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines event log")],
    policy: Annotated[str, typer.Option(help="ordering policy, e.g. fifo or bounded-overtake:k=500")] = "fifo",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the canonical snapshot here")] = None,
) -> None:
    """Fold an event log and print the projections."""
    settings = policy_option(policy)
    try:
        bank, rejected = fold_log(log, settings)
    except LogError as exc:
        fail("fold", exc)
    print_rejected(rejected, sum(bank.rejections.values()))
    snap = bank.snapshot()
    print_snapshot(console, snap, bank.stats())
    if json_out is not None:
        json_out.write_bytes(canonical(snap))
        console.print(f"snapshot written to {json_out}")


def policies() -> None:
    """List the ordering policies."""
    table = Table("policy", "what it does", title="Ordering policies")
    for name, factory in REGISTRY.items():
        table.add_row(name, factory().describe())
    console.print(table)


def schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event and projection, by file name."""
    models = [*EVENT_TYPES, *DOCS]
    return {f"{model.__name__}.json": model.model_json_schema() for model in models}


def schema(output: Annotated[Path, typer.Option("-o", "--output")] = Path("schemas")) -> None:
    """Write JSON Schema for every event and projection."""
    output.mkdir(parents=True, exist_ok=True)
    for name, doc in schemas().items():
        (output / name).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {len(schemas())} schemas to {output}/")




def register(app: typer.Typer) -> None:
    """Add these commands to the `orderbank` app."""
    for command in (synth, fold, policies, schema):
        app.command()(command)
