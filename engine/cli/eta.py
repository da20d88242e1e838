"""The `eta` commands: how good the ETA forecast is, tried on a log's own history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from orderbank.engine.cli.core import policy_option
from orderbank.engine.cli.failure import Commands
from orderbank.engine.cli.output import console, err
from orderbank.projections.bank import canonical
from orderbank.replay.backtest import DEFAULT_DAYS, Backtest
from orderbank.replay.etareport import TRIM_HEAD, cutoff_rows, trim_rows
from orderbank.replay.history import replay_history
from orderbank.replay.source import FileSource

group = typer.Typer(cls=Commands, no_args_is_help=True, help=__doc__)


def _days(spec: str) -> list[int]:
    try:
        days = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        raise typer.BadParameter(f"--at takes days after launch separated by commas, e.g. 1,7,30; got {spec!r}") \
            from None
    if not days or days[0] < 1:
        raise typer.BadParameter("--at: name at least one day, each 1 or more")
    return days


@group.command()
def backtest(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines event log (.jsonl, .jsonl.gz)")],
    at: Annotated[str, typer.Option(help="cutoffs: days after the log's first midnight")] =
    ",".join(map(str, DEFAULT_DAYS)),
    policy: Annotated[str, typer.Option(help="the maker's ordering policy (positions follow it)")] = "high-trim-first",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here (canonical JSON)")] = None,
    by_trim: Annotated[bool, typer.Option("--by-trim", help="also the forecast's figures for each trim")] = False,
) -> None:
    """Fold LOG to each cutoff, forecast every open order, and score the forecast and the trailing-rate rule
    against the deliveries the rest of the log shows."""
    tracker = Backtest(_days(at))
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"fold {log.name}", total=None)
        bank, _ = replay_history(FileSource(log), policy_option(policy),
                                 lambda lines: progress.update(task, completed=lines), tracker)
    summary = tracker.summary(bank)
    console.print(table(summary))
    if by_trim:
        console.print(trim_table(summary))
    if summary["beyond_log"]:
        err.print(f"[yellow]cutoffs past the log's end, not scored[/]: {summary['beyond_log']}")
    if json_out is not None:
        json_out.write_bytes(canonical(summary) + b"\n")
        console.print(f"figures written to {json_out}")


def table(summary: dict[str, Any]) -> Table:
    out = Table(title=f"ETA backtest ({summary['policy']}): the forecast's 80% band and median against the trailing "
                      "28-day rate", caption="ETA: share of open orders with one; |err|: median absolute error of the "
                      "median, bias: its mean error (+ = too late), width: the band's median, all in days; wait: "
                      "median actual wait from the cutoff; cancelled, undelivered: orders not scored")
    for column in ("day", "open", "basis", "ETA", "in band", "|err|", "bias", "width", "trail ETA", "trail |err|",
                   "trail bias", "wait", "cancelled", "undelivered"):
        out.add_column(column, justify="right")
    for cells in cutoff_rows(summary["cutoffs"]):
        out.add_row(*cells)
    return out


def trim_table(summary: dict[str, Any]) -> Table:
    out = Table(title="The forecast for each trim's orders", caption="as above; a lower trim served after higher "
                "ones waits longest, and its dates reach furthest past what the log has shown")
    for column in TRIM_HEAD:
        out.add_column(column, justify="right")
    for cells in trim_rows(summary["cutoffs"]):
        out.add_row(*cells)
    return out


def register(app: typer.Typer) -> None:
    """Add the `eta` group to the `orderbank` app."""
    app.add_typer(group, name="eta")
