"""The `eta` commands: how good the ETA forecast is, tried on a log's own history (`backtest`) and on many
synthetic launches (`launches`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderbank.engine.cli.core import policy_option
from orderbank.engine.cli.failure import Commands
from orderbank.engine.cli.output import console, err
from orderbank.projections.bank import canonical
from orderbank.replay.backtest import DEFAULT_DAYS, Backtest
from orderbank.replay.etareport import TRIM_HEAD, cutoff_rows, trim_rows
from orderbank.replay.history import replay_history
from orderbank.replay.launches import Study, backtest_launches, parse_seeds, spread
from orderbank.replay.source import FileSource
from orderbank.replay.synth import preset

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


@group.command()
def launches(
    seeds: Annotated[str, typer.Option(help="the launches' seeds: 1-40, 1,3,7 or both")] = "1-8",
    preset_name: Annotated[str, typer.Option("--preset", help="small or yu7")] = "yu7",
    orders: Annotated[int | None, typer.Option(help="orders in each launch (default: the preset's)")] = None,
    at: Annotated[str, typer.Option(help="cutoffs: days after each launch's first midnight")] =
    ",".join(map(str, DEFAULT_DAYS)),
    policy: Annotated[str, typer.Option(help="the maker's ordering policy (positions follow it)")] = "high-trim-first",
    tolerance: Annotated[float, typer.Option(help="a launch's coverage counts as close within this of 80%")] = 0.05,
    jobs: Annotated[int, typer.Option(help="launches backtested at once (default: one per core)")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here (canonical JSON)")] = None,
) -> None:
    """Synthesize a launch for each seed, backtest each, and show how widely single launches' coverage strays
    from the band's 80%: one launch's orders share one factory's luck."""
    try:
        chosen = parse_seeds(seeds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--seeds") from None
    if not 0 < tolerance < 0.8:
        raise typer.BadParameter(f"a share above 0 and below 0.8, got {tolerance}", param_hint="--tolerance")
    study = Study(preset(preset_name, orders), chosen, tuple(_days(at)), policy_option(policy), tolerance)
    workers = min(jobs or os.cpu_count() or 1, len(chosen))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"backtest {len(chosen)} {study.scenario.name} launches", total=len(chosen))
        done = backtest_launches(study, workers, lambda _seed: progress.advance(task))
    summary = spread(study, done)
    console.print(launches_table(summary))
    if json_out is not None:
        json_out.write_bytes(canonical(summary) + b"\n")
        console.print(f"figures written to {json_out}")


def launches_table(summary: dict[str, Any]) -> Table:
    low, high = (round(100 * (summary["target"] + sign * summary["tolerance"])) for sign in (-1, 1))
    count = len(summary["seeds"])
    out = Table(title=f"The 80% band over {count} {summary['scenario']} launches of {summary['orders']:,} orders "
                      f"({summary['policy']}, seeds {_seed_span(summary['seeds'])})",
                caption=f"in band: the share of each launch's deliveries inside their bands: the mean over launches, "
                        f"and the 10th, 50th and 90th percentile launch; {low}-{high}%: launches that close to 80%; "
                        f"bias: mean error of the median (+ = too late), |err|: the median launch's median absolute "
                        f"error, in days. Within {low}-{high}% at every cutoff: {summary['within_at_every_cutoff']} "
                        f"of {count} launches")
    for column in ("day", "launches", "in band", "p10", "p50", "p90", f"{low}-{high}%", "bias", "|err|"):
        out.add_column(column, justify="right")
    for cut in summary["cutoffs"]:
        out.add_row(str(cut["day"]), str(cut["launches"]), *(f"{100 * cut[key]:.1f}%" for key in (
            "mean_coverage", "coverage_p10", "coverage_p50", "coverage_p90")),
            f"{cut['within']} of {cut['launches']}", f"{cut['mean_error_days']:+.1f} d",
            f"{cut['median_abs_error_days']:.1f} d")
    return out


def _seed_span(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1 \
        else ",".join(map(str, seeds))


def register(app: typer.Typer) -> None:
    """Add the `eta` group to the `orderbank` app."""
    app.add_typer(group, name="eta")
