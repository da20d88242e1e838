"""The report on disk: summary.json (canonical), summary.csv, daily.csv and a self-contained index.html.

Every file is written beside its final name and renamed into place, so an interrupted run never
leaves a half-written report. The HTML has inline SVG charts and no scripts: it opens offline.
"""

from __future__ import annotations

import csv
import io
import os
from html import escape
from pathlib import Path
from typing import Any

from orderbank.projections.bank import canonical
from orderbank.replay.etareport import eta_section
from orderbank.replay.svg import bar_chart, line_chart
from orderbank.replay.terminal import HEADLINES, cell

HAPPENED = "as it happened"


def write_report(summary: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "summary.json": canonical(summary) + b"\n",
        "summary.csv": _summary_csv(summary).encode(),
        "daily.csv": _daily_csv(summary).encode(),
        "index.html": html(summary).encode(),
    }
    written = []
    for name, data in files.items():
        target = directory / name
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)
        written.append(target)
    return written


def _summary_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    specs = list(summary["policies"])
    writer.writerow(["figure", HAPPENED, *(f"{spec} {part}" for spec in specs for part in ("mean", "low", "high"))])
    happened = summary["as_happened"]["figures"]
    names = sorted({*happened, *(n for result in summary["policies"].values() for n in result["figures"])})
    for name in names:
        row: list[object] = [name, happened.get(name)]
        for spec in specs:
            figure = summary["policies"][spec]["figures"].get(name, {})
            row += [figure.get("mean"), figure.get("low"), figure.get("high")]
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()


def _daily_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns: dict[str, list[float]] = {f"{HAPPENED} {k}": v for k, v in summary["as_happened"]["series"].items()}
    for spec, result in summary["policies"].items():
        columns.update({f"{spec} {k}": v for k, v in result["series"].items()})
    writer.writerow(["day", *columns])
    for i, day in enumerate(summary["days"]):
        writer.writerow([day, *(values[i] for values in columns.values())])
    return out.getvalue()


def _lines(summary: dict[str, Any], series: str) -> dict[str, list[float | None]]:
    lines: dict[str, list[float | None]] = {HAPPENED: list(summary["as_happened"]["series"][series])}
    lines.update({spec: list(result["series"][series]) for spec, result in summary["policies"].items()})
    return lines


def _by_trim(summary: dict[str, Any], figure: str) -> dict[str, list[float | None]]:
    trims = summary["log"]["trims"]
    bars: dict[str, list[float | None]] = {
        HAPPENED: [summary["as_happened"]["figures"].get(f"trim.{t}.{figure}") for t in trims]}
    for spec, result in summary["policies"].items():
        bars[spec] = [result["figures"].get(f"trim.{t}.{figure}", {}).get("mean") for t in trims]
    return bars


def _table(summary: dict[str, Any]) -> str:
    specs = list(summary["policies"])
    head = "".join(f"<th>{escape(s)}</th>" for s in [HAPPENED, *specs])
    rows = []
    for name, label, fmt in HEADLINES:
        cells = [cell(fmt, summary["as_happened"]["figures"].get(name))]
        for spec in specs:
            f = summary["policies"][spec]["figures"].get(name, {})
            cells.append(cell(fmt, f.get("mean"), f.get("low"), f.get("high")))
        rows.append(f"<tr><td>{escape(label.strip())}</td>" + "".join(f"<td>{escape(c)}</td>" for c in cells)
                    + "</tr>")
    return f"<table><tr><th>figure</th>{head}</tr>{''.join(rows)}</table>"


def _bank_charts(summary: dict[str, Any]) -> list[str]:
    bank = summary.get("bank")
    if not bank:
        return []
    days = bank["days"]
    return [
        line_chart("Fold: open orders", days,
                   {"open orders": bank["backlog"]}),
        line_chart("Fold: days to clear the backlog at the 28-day delivery rate", days,
                   {"days to clear": bank["clear_days"]}),
        line_chart("Fold: cancellations / placements, rolling", days,
                   {"7 days": bank["cancel_rate_7d"], "28 days": bank["cancel_rate_28d"]}),
    ]


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
         "text-align:right}td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:8px}"
         "pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap}")


def html(summary: dict[str, Any]) -> str:
    log, settings, estimates = summary["log"], summary["settings"], summary["estimates"]
    days = summary["days"]
    charts = [
        line_chart("Open orders (backlog)", days, _lines(summary, "backlog")),
        line_chart(f"Prepayment pool held ({log['currency']})", days, _lines(summary, "pool")),
        line_chart("Cancelled orders, cumulative", days, _lines(summary, "cancelled")),
        line_chart("Cars delivered, cumulative", days, _lines(summary, "delivered")),
        bar_chart("Mean wait by trim (days, delivered cars)", log["trims"], _by_trim(summary, "wait_mean")),
        bar_chart("p95 wait by trim (days)", log["trims"], _by_trim(summary, "wait_p95")),
        bar_chart("Cancelled, share of orders by trim", log["trims"], _by_trim(summary, "cancel_rate")),
    ]
    load = log["load"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>orderbank replay</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Replay of {escape(log['name'])}</h1>"
        f"<p>{log['orders']:,} orders from {escape(log['from'])} to {escape(log['to'])} ({log['days']} days), "
        f"{load['applied']:,} events applied, {load['duplicates']:,} duplicates, "
        f"{sum(load['rejected'].values()):,} rejected {escape(str(load['rejected']) if load['rejected'] else '')}. "
        f"Policies replayed with {settings['replications']} replication(s) from seed {settings['seed']}; "
        "policy columns show the mean ± half the 95% interval.</p>"
        f"{_table(summary)}<div class='charts'>{''.join(charts)}</div>"
        "<h2>The log as the live engine folds it</h2><div class='charts'>"
        f"{''.join(_bank_charts(summary))}</div>"
        f"{eta_section(summary)}"
        "<h2>What the counterfactual learned from the log</h2>"
        f"<pre>{escape(canonical(estimates).decode())}</pre>"
        "</body></html>\n"
    )
