"""Output for people: counts with thousands separators (progress too), times to the second, money in major units
with its currency, counts by reason as words rather than a Python dict, and `up`'s summary labelled as `fold`
shows the same figures."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from orderbank.engine.cli.up import summary_table
from orderbank.replay.render import band, counted, money, when
from orderbank.replay.terminal import Counts


def shown(renderable: object) -> str:
    console = Console(width=120, file=io.StringIO())
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_people_read_times_to_the_second_money_in_major_units_and_counts_as_words() -> None:
    assert when("2025-06-26T14:00:00.557440Z") == "2025-06-26 14:00:00 UTC"
    assert when(None) == "no events yet"
    assert money(51_527_960_000) == "515,279,600" and money(51_527_960_000, "CNY") == "515,279,600 CNY"
    assert counted({"currency_mismatch": 1, "seq_gap": 8, "unknown_order": 1}) == (
        "seq_gap 8, currency_mismatch 1, unknown_order 1")
    assert band({"eta": "2025-10-12T09:00:00Z", "eta_low": "2025-10-02T08:00:00Z", "eta_high": None}) == (
        "2025-10-02 .. later (median 2025-10-12)")
    assert band({"eta": None, "eta_low": None, "eta_high": None}) == "no ETA yet"


def test_progress_counts_have_thousands_separators() -> None:
    with Progress(Counts(), console=Console(file=io.StringIO())) as progress:
        known, unknown = progress.add_task("a", total=1_112_602), progress.add_task("b", total=None)
        progress.update(known, completed=65_536)
        progress.update(unknown, completed=10_240)
        tasks = {task.id: task for task in progress.tasks}
        assert str(Counts().render(tasks[known])) == "65,536/1,112,602"
        assert str(Counts().render(tasks[unknown])) == "10,240"


def test_ups_summary_labels_counts_as_counts_and_money_with_its_currency() -> None:
    health = {"shards": {"0": {"processed": 65_536, "orders": 20_000, "as_of": "2025-11-02T10:01:25.661347Z"},
                         "1": {"processed": 1_024, "orders": 300, "as_of": None}},
              "ingest": {"lag": 12_345}}
    rates = {"overall": {"placed": 20_300, "cancelled": 2_030, "rate": 0.1}}
    pool = {"totals": {"CNY": {"open_orders": 15_000, "held": 51_527_960_000}}}
    text = shown(summary_table(70_000, health, rates, pool))
    for label, value in (("events produced", "70,000"), ("events processed", "66,560"), ("input lag", "12,345"),
                         ("orders", "20,300"), ("as of", "2025-11-02 10:01:25 UTC"),
                         ("cancelled", "2,030 of 20,300 (10.0%)"), ("open orders", "15,000"),
                         ("prepayments held", "515,279,600 CNY")):
        assert any(label in line and line.rstrip(" │").endswith(value) for line in text.splitlines()), (label, text)
    assert "(CNY)" not in text and ".00" not in text
    assert "starting..." in shown(summary_table(10, None, None, None))
