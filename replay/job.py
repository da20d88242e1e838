"""The replay jobs the command line runs: replay a log, and the demo (synthesise the yu7 launch into the report
directory, then replay it). Progress goes to `err`, the comparison table to `out`, the report to disk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from orderbank.projections.bank import OrderBank
from orderbank.projections.orders import US_PER_DAY, iso, micros
from orderbank.replay.compare import ReplayProgress, ReplaySettings, compare
from orderbank.replay.logfile import no_events, write_docs
from orderbank.replay.render import counted, print_snapshot
from orderbank.replay.report import write_report
from orderbank.replay.source import FileSource, LineSource
from orderbank.replay.synth import generate, preset
from orderbank.replay.terminal import comparison_tables, progress_bars
from orderbank.replay.tidy import Results, write_tables

DEMO_PRESET = "yu7"
FOUR_MONTHS_US = 122 * US_PER_DAY  # the seed: 140,000-150,000 still waiting four months after the launch


def replay_log(source: LineSource, settings: ReplaySettings, output: Path, out: Console,
               err: Console) -> dict[str, Any]:
    """Compare the policies on the log, print the table, write the report and the tidy tables."""
    folded: list[OrderBank] = []
    results = Results()
    with progress_bars(err) as progress:
        summary = compare(source, settings, progress, folded.append, results.record)
    load = summary["log"]["load"]
    if not summary["log"]["orders"]:
        raise no_events(source.name, sum(load["rejected"].values()))
    for bank in folded:  # the live projections at the end of the log, as the stream would show them
        print_snapshot(out, bank.snapshot(), bank.stats())
    written = write_report(summary, output) + write_tables(results, output)
    for table in comparison_tables(summary, out.width):
        out.print(table)
    if load["rejected"]:
        err.print(f"[yellow]{sum(load['rejected'].values()):,} lines rejected[/]: {counted(load['rejected'])}")
        for example in load["examples"][:5]:
            err.print(f"  line {example['line']}: {example['reason']} ({example['rule']}): {example['message']}")
    out.print(f"report: {', '.join(str(path) for path in written)}")
    return summary


def _counted(items: Iterable[dict[str, Any]], progress: ReplayProgress, total: int | None) -> Iterator[dict[str, Any]]:
    for number, item in enumerate(items, start=1):
        if number % 65_536 == 0:
            progress("synth", number, total)
        yield item


def demo(seed: int, settings: ReplaySettings, output: Path, out: Console, err: Console) -> dict[str, Any]:
    """Synthesise the yu7 launch (a year, ~1.1 million events) into the report directory, replay it, and say how
    to open its pages."""
    scenario = preset(DEMO_PRESET)
    log = output / f"launch-{scenario.name}-seed{seed}.jsonl"
    with progress_bars(err) as progress:
        count = write_docs(log, _counted(generate(scenario, seed), progress, None))
    out.print(f"synthesised {count:,} events for {scenario.orders:,} orders ({scenario.name}, seed {seed}) into {log}")
    summary = replay_log(FileSource(log), settings, output, out, err)
    four_months_in = iso(micros(datetime.fromisoformat(summary["log"]["from"])) + FOUR_MONTHS_US)[:10]
    out.print("the pages of this launch (a customer's order, the operations dashboard, the policy), as its "
              f"customers saw them four months in: [bold]orderbank serve {log} --until {four_months_in} "
              f"--report {output}[/] (then open the address it prints)", soft_wrap=True)
    return summary
