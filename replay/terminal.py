"""The replay in the terminal: the comparison as a rich table (one row per headline figure, one
column per policy) and progress bars for the long stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, Task, TaskID
from rich.table import Table
from rich.text import Text

HEADLINES: tuple[tuple[str, str, str], ...] = (
    # (figure, label, format)
    ("delivered", "cars delivered", "{:,.0f}"),
    ("revenue", "revenue realised", "{:,.0f}"),
    ("cancel_rate", "cancelled, share of orders", "{:.1%}"),
    ("cancel_customer", "  by customers", "{:,.0f}"),
    ("cancel_void", "  voided, balance unpaid", "{:,.0f}"),
    ("revenue_lost", "revenue lost to cancellations", "{:,.0f}"),
    ("open_at_end", "still open at the end", "{:,.0f}"),
    ("wait_mean", "wait, mean days", "{:.1f}"),
    ("wait_p50", "wait, median days", "{:.1f}"),
    ("wait_p95", "wait, p95 days", "{:.1f}"),
    ("wait_p99", "wait, p99 days", "{:.1f}"),
    ("pool_mean", "pool held, mean", "{:,.0f}"),
    ("pool_peak", "pool held, peak", "{:,.0f}"),
    ("held_per_car", "pool mean per car delivered", "{:,.0f}"),
    ("float_days", "days of float", "{:.1f}"),
    ("overtakes", "overtakes (pairs out of order)", "{:,.0f}"),
    ("largest_overtake", "largest overtake (places)", "{:,.0f}"),
    ("kendall_tau", "Kendall tau, order vs service", "{:.3f}"),
    ("share_overtaken", "customers overtaken", "{:.1%}"),
)


def cell(fmt: str, value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "-"
    text = fmt.format(value)
    if low is not None and high is not None and high > low:
        text += " ±" + fmt.format((high - low) / 2).lstrip()
    return text


def comparison_table(summary: dict[str, Any]) -> Table:
    """Headline figures: as it happened, then each policy's mean ± half its 95% interval."""
    log = summary["log"]
    settings = summary["settings"]
    table = Table(title=f"Replay of {log['name']}: {log['orders']:,} orders, {log['from'][:10]} to {log['to'][:10]}, "
                        f"{settings['replications']} replication(s), money in {log['currency']}")
    table.add_column("figure")
    table.add_column("as it happened", justify="right")
    for spec in summary["policies"]:
        # A policy's parameters go on a line under its name, never broken (a column is as wide as its figures):
        # folded to the column's width, `bounded-overtake:k=1000` once read `k=100` / `0`.
        table.add_column(spec.replace(":", "\n", 1), justify="right", overflow="fold")
    happened = summary["as_happened"]["figures"]
    for name, label, fmt in HEADLINES:
        cells = [cell(fmt, happened.get(name))]
        for result in summary["policies"].values():
            figure = result["figures"].get(name, {})
            cells.append(cell(fmt, figure.get("mean"), figure.get("low"), figure.get("high")))
        table.add_row(label, *cells)
    return table


class Counts(ProgressColumn):
    """How far a task is, with thousands separators: '65,536/1,112,602', or '65,536' while its total is unknown."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        return Text(done if task.total is None else f"{done}/{int(task.total):,}", style="progress.download")


@contextmanager
def progress_bars(console: Console) -> Iterator[Callable[[str, int, int | None], None]]:
    """A rich progress display, one bar per stage; yields the callback `compare` reports to."""
    with Progress(*Progress.get_default_columns(), Counts(), console=console, transient=True) as bars:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield report


STAGES = {"load": "loading the log into columns", "fold": "folding it with the live reducer",
          "replay": "replaying policies", "synth": "synthesising the launch"}
