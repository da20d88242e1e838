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

from orderbank.replay.compare import HAPPENED

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


Row = tuple[str, str, dict[str, str]]
"""A headline figure: its label, as it happened, and each policy's cell."""


def _rows(summary: dict[str, Any]) -> list[Row]:
    happened = summary["as_happened"]["figures"]
    rows = []
    for name, label, fmt in HEADLINES:
        cells = {}
        for spec, result in summary["policies"].items():
            figure = result["figures"].get(name, {})
            cells[spec] = cell(fmt, figure.get("mean"), figure.get("low"), figure.get("high"))
        rows.append((label, cell(fmt, happened.get(name)), cells))
    return rows


def _widths(header: str, cells: list[str]) -> tuple[int, int]:
    """A column's narrowest width that folds no word (a cell wraps between a value and its ±) and its natural
    width (every cell on one line)."""
    return (max(len(word) for text in (header, *cells) for word in text.split()),
            max(len(text) for text in (header, *cells)))


def _width(columns: list[int]) -> int:
    """A table's width for these column widths: a space either side of each column and a border between."""
    return sum(columns) + 3 * len(columns) + 1


def _columns(rows: list[Row], specs: list[str]) -> list[tuple[str, tuple[int, int]]]:
    """The figure column, as it happened, then the policies': each header with its widths."""
    return [("figure", _widths("figure", [label for label, _, _ in rows])),
            (HAPPENED, _widths(HAPPENED, [happened for _, happened, _ in rows])),
            *((spec, _widths(spec, [cells[spec] for _, _, cells in rows])) for spec in specs)]


def comparison_tables(summary: dict[str, Any], width: int) -> list[Table]:
    """Headline figures: as it happened, then each policy's mean ± half its 95% interval, in as few tables of at
    most `width` columns as keep every policy's name on one line (each table repeats the figure and as it
    happened columns)."""
    rows = _rows(summary)
    chunks: list[list[str]] = [[]]
    for spec in summary["policies"]:
        if chunks[-1] and _width([least for _, (least, _) in _columns(rows, [*chunks[-1], spec])]) > width:
            chunks.append([])
        chunks[-1].append(spec)
    log, settings = summary["log"], summary["settings"]
    title = (f"Replay of {log['name']}: {log['orders']:,} orders, {log['from'][:10]} to {log['to'][:10]}, "
             f"{settings['replications']} replication(s), money in {log['currency']}")
    return [_table(rows, chunk, width, title if i == 0 else None) for i, chunk in enumerate(chunks)]


def _table(rows: list[Row], specs: list[str], width: int, title: str | None) -> Table:
    columns = _columns(rows, specs)
    fits = _width([natural for _, (_, natural) in columns]) <= width
    table = Table(title=title)
    for i, (header, (least, _)) in enumerate(columns):
        # Too narrow for every cell on one line: the figures' columns keep the width their longest word needs and
        # the labels wrap (rich would otherwise narrow the widest columns first, folding names and numbers).
        table.add_column(header, justify="left" if i == 0 else "right", width=None if fits or i == 0 else least)
    for label, happened, cells in rows:
        table.add_row(label, happened, *(cells[spec] for spec in specs))
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
