"""The replay report as people read it: the HTML page's sentences, tables, charts and notes, and the terminal
table at the widths terminals have."""

from __future__ import annotations

import copy
import io
import re
from html import escape, unescape
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from orderbank.replay.compare import HAPPENED, ReplaySettings, compare
from orderbank.replay.report import html, write_report
from orderbank.replay.source import MemorySource
from orderbank.replay.svg import CHAR_WIDTH, RIGHT, WIDTH, bar_chart, line_chart
from orderbank.replay.terminal import HEADLINES, comparison_tables

POLICIES = ("fifo", "high-trim-first", "paid-first", "bounded-overtake:k=1000")


@pytest.fixture(scope="module")
def summary(launch_docs: list[dict[str, Any]]) -> dict[str, Any]:
    return compare(MemorySource(tuple(orjson.dumps(doc) for doc in launch_docs)),
                   ReplaySettings(POLICIES, replications=2, eta_days=(7, 30)))


def texts(svg: str) -> list[tuple[float, str]]:
    """Each text element of a chart whose content is plain text: its x and its text."""
    return [(float(x), text) for x, text in re.findall(r'<text x="([\d.]+)"[^>]*>([^<]*)</text>', svg)]


def test_the_summary_sentence_reads_right(summary: dict[str, Any]) -> None:
    def intro(page: str) -> str:
        return page.split("</h1><p>")[1].split("</p>")[0]

    assert " ." not in intro(html(summary)) and "duplicates, none rejected. Policies" in intro(html(summary))
    assert f"from {summary['log']['from'][:10]} to {summary['log']['to'][:10]} (" in intro(html(summary))
    rejecting = copy.deepcopy(summary)
    rejecting["log"]["load"]["rejected"] = {"seq_gap": 2, "currency_mismatch": 1_200}
    assert "duplicates, 1,202 rejected (1,200 currency_mismatch, 2 seq_gap). Policies" in intro(html(rejecting))


def test_legends_show_every_name_whole_inside_the_chart() -> None:
    names = ["as it happened", *POLICIES, "bounded-overtake:k=25000"]
    for svg in (line_chart("t", ["d1", "d2"], {name: [1.0, 2.0] for name in names}),
                bar_chart("t", ["Max", "Pro"], {name: [1.0, 2.0] for name in names})):
        shown = {text: x for x, text in texts(svg)}
        assert set(names) <= shown.keys()
        assert all(shown[name] + CHAR_WIDTH * len(name) <= WIDTH - RIGHT for name in names)
        rows = {y for y in re.findall(r'<rect x="[\d.]+" y="(\d+)" width="10"', svg)}
        height = int(re.search(r'height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
        assert len(rows) > 1 and max(map(int, rows)) + 10 <= height


def test_shares_are_charted_in_percent_as_the_table_shows_them(summary: dict[str, Any]) -> None:
    page = html(summary)
    chart = page.split("Cancelled, share of orders by trim")[1].split("</svg>")[0]
    ticks = [text for _, text in texts(chart) if text[:1].isdigit()]
    assert ticks and all(tick.endswith("%") for tick in ticks), ticks
    assert re.search(r"<title>fifo: \d+(\.\d+)?%</title>", chart)


def test_a_missing_bar_is_marked_and_explained(summary: dict[str, Any]) -> None:
    # The small launch's first year delivers no Pro or Standard car as it happened, nor under some policies.
    columns = {HAPPENED: summary["as_happened"]["figures"]}
    columns.update({spec: {name: f["mean"] for name, f in result["figures"].items()}
                    for spec, result in summary["policies"].items()})
    gaps = [f"{column} in {trim}" for column, figures in columns.items() for trim in summary["log"]["trims"]
            if figures[f"trim.{trim}.wait_mean"] is None]
    assert gaps
    page = html(summary)
    chart = page.split("Mean wait by trim")[1].split("</figure>")[0]
    assert chart.count(": no value</title>") == len(gaps)
    assert (f"<figcaption>No bar for {escape(', '.join(gaps))}: none of those orders got its car by the end of the "
            "log.</figcaption>") in chart
    assert "<figcaption>" not in page.split("Cancelled, share of orders by trim")[1].split("</figure>")[0]


def test_each_fairness_figure_is_explained_beside_the_table(summary: dict[str, Any]) -> None:
    page = html(summary)
    notes = page.split("Reading the fairness rows")[1].split("</dl>")[0]
    labels = [label for name, label, _ in HEADLINES
              if name in ("overtakes", "largest_overtake", "kendall_tau", "share_overtaken")]
    assert [term for term in re.findall(r"<dt>([^<]*)</dt>", notes)] == labels
    assert page.index("</table>") < page.index("Reading the fairness rows") < page.index("<svg")
    # The column where tau looks most at odds with its overtakes is worked through in its own numbers.
    columns = {HAPPENED: summary["as_happened"]["figures"]}
    columns.update({spec: {name: f["mean"] for name, f in result["figures"].items()}
                    for spec, result in summary["policies"].items()})
    overtaken = {column: f for column, f in columns.items() if f["overtakes"]}
    column = max(overtaken, key=lambda c: overtaken[c]["kendall_tau"])
    figures = overtaken[column]
    assert (f"Here, {column}: {figures['overtakes']:,.0f} overtakes" in notes
            and f"pairs its {figures['served']:,.0f} served orders make, so tau is {figures['kendall_tau']:.3f}"
            in notes)


def test_what_the_counterfactual_learned_is_a_table_not_json(summary: dict[str, Any]) -> None:
    page = html(summary)
    section = page.split("What the counterfactual learned from the log")[1]
    assert "<pre" not in page and '{"' not in section
    rows = dict(re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", unescape(section)))
    estimates = summary["estimates"]
    assert rows["time given to pay the balance, median"] == f"{estimates['due_days']:,.1f} days"
    assert rows["customers asked for the balance who paid"] == f"{estimates['pay_probability']:.1%}"
    refund, patience = estimates["refunds"]["customer"], estimates["patience"]
    assert rows["refund on cancellation (customer)"] == f"{refund['share']:.0%} of what was paid"
    assert rows["customers' patience (kaplan-meier)"].startswith(f"{patience['observed']:,} cancellations")
    median = patience["median_days"]
    assert rows["median patience"] == ("beyond the log" if median is None else f"{median:,.1f} days")
    weibull = copy.deepcopy(summary)
    weibull["estimates"]["patience"] = {"estimator": "weibull", "shape": 1.31, "scale_days": 420.0,
                                        "median_days": 316.25, "observed": 9, "censored": 11}
    rows = dict(re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", unescape(html(weibull))))
    assert rows["customers' patience (weibull)"] == "9 cancellations seen, 11 waits cut short"
    assert rows["median patience"] == "316.2 days" and rows["Weibull shape, scale"] == "1.31, 420.0 days"


@pytest.mark.parametrize("width", [80, 100, 120, 160, 240])
def test_the_terminal_table_never_folds_a_policy_name(summary: dict[str, Any], width: int) -> None:
    console = Console(width=width, file=io.StringIO(), record=True)
    tables = comparison_tables(summary, width)
    for table in tables:
        console.print(table)
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= width
    for spec in POLICIES:
        assert sum(spec in line for line in lines) == 1, spec
    assert sum("as it" in line for line in lines) == len(tables)
    for _, label, _ in HEADLINES:
        assert sum(label.split()[0] in line for line in lines) >= len(tables)
    assert (len(tables) == 1) == (width >= 120)


def test_the_report_fits_a_laptop_screen_in_a_real_browser(summary: dict[str, Any], tmp_path: Path) -> None:
    from tests.replay.report_screenshot import shoot

    write_report(summary, tmp_path)
    assert shoot(tmp_path / "index.html", tmp_path / "report.png") == []
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.png").stat().st_size > 50_000
