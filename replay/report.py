"""The report on disk: summary.json (canonical), summary.csv, daily.csv and a self-contained index.html.

Every file is written beside its final name and renamed into place, so an interrupted run never
leaves a half-written report. The HTML has inline SVG charts and no scripts: it opens offline.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

from orderbank.projections.bank import canonical
from orderbank.replay.compare import HAPPENED
from orderbank.replay.etareport import eta_section
from orderbank.replay.svg import bar_figure, line_chart
from orderbank.replay.terminal import HEADLINES, cell


def write_report(summary: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "summary.json": canonical(summary) + b"\n",
        "summary.csv": _summary_csv(summary).encode(),
        "daily.csv": _daily_csv(summary).encode(),
        "index.html": html(summary).encode(),
    }
    return [replace_into(directory / name, partial(Path.write_bytes, data=data)) for name, data in files.items()]


def replace_into(target: Path, write: Callable[[Path], object]) -> Path:
    """Write `target` through `write` beside its final name, then rename it into place."""
    beside = target.with_name(target.name + ".partial")
    write(beside)
    os.replace(beside, target)
    return target


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
    return f"<div class='wide'><table><tr><th>figure</th>{head}</tr>{''.join(rows)}</table></div>"


def _columns(summary: dict[str, Any], name: str) -> dict[str, float | None]:
    """One figure for every column of the table: as it happened, then each policy's mean."""
    values = {HAPPENED: summary["as_happened"]["figures"].get(name)}
    values.update({spec: result["figures"].get(name, {}).get("mean") for spec, result in summary["policies"].items()})
    return values


def _tau_example(summary: dict[str, Any]) -> str:
    """Why tau can sit near 1 beside many overtakes, in the numbers of the column where it looks most surprising
    (the overtaken column whose tau is highest): how many of its overtakes were between two served orders, the
    only pairs tau sees, and what share of all its served pairs they are. From the means over replications, so
    about."""
    overtakes, served, tau = (_columns(summary, name) for name in ("overtakes", "served", "kendall_tau"))
    shown = [column for column in overtakes
             if overtakes[column] and (served[column] or 0) > 1 and tau[column] is not None]
    if not shown:
        return ""
    column = max(shown, key=lambda c: tau[c] or 0.0)
    count, orders, rho = overtakes[column] or 0.0, served[column] or 0.0, tau[column] or 0.0
    pairs = orders * (orders - 1) / 2
    between_served = (1 - rho) * pairs / 2  # tau = 1 - 2 * (pairs out of turn) / pairs
    return (f" Here, {column}: {count:,.0f} overtakes, about {between_served:,.0f} of them between two orders that "
            f"both got a car, which is {between_served / pairs:.3%} of the {pairs:,.0f} pairs its {orders:,.0f} "
            f"served orders make, so tau is {rho:.3f}; the other overtakes jumped orders that later cancelled or "
            "still wait.")


def _fairness_notes(summary: dict[str, Any]) -> str:
    """What each fairness row of the table means, under the table."""
    notes = (
        ("overtakes (pairs out of order)",
         "pairs of orders in the same lane where the one placed later got a car on an earlier day while the one "
         "placed first still waited (it got its car later, cancelled later, or still waits at the end). First "
         "come, first served has none; orders given cars on the same day never count."),
        ("largest overtake (places)",
         "the most places in the order sequence by which one order jumped an order still waiting: "
         "bounded-overtake:k allows at most k."),
        ("Kendall tau, order vs service",
         "the rank correlation of the order sequence and the service sequence among the orders that got a car: "
         "1 = served exactly in order, 0 = no relation, -1 = reversed. It weighs the pairs served out of turn "
         "against every pair of served orders, so millions of overtakes can still leave it near 1; it ignores "
         "orders that never got a car, which the overtakes count." + _tau_example(summary)),
        ("customers overtaken",
         "the share of all orders overtaken at least once, whether they later got a car, cancelled or still wait."),
    )
    items = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in notes)
    return f"<h2>Reading the fairness rows</h2><dl class='notes'>{items}</dl>"


def _days(value: object) -> str:
    return "-" if value is None else f"{value:,.1f} days"


def _learned(estimates: dict[str, Any]) -> str:
    """The counterfactual's inputs read off the log, as a table."""
    rows = [
        ("allocation to delivery, median", _days(estimates["lead_days"]),
         "a car is delivered this long after its allocation when the log did not deliver it"),
        ("time given to pay the balance, median", _days(estimates["due_days"]),
         "an allocated order unpaid by then is voided"),
        ("customers asked for the balance who paid", f"{estimates['pay_probability']:.1%}",
         "an order asked only in the counterfactual pays with this probability"),
        ("demand to payment, median", _days(estimates["pay_delay_days_median"]),
         "such an order pays after a delay drawn from the log's delays"),
    ]
    for reason, refund in estimates["refunds"].items():
        when = "never paid in the log" if refund["delay_days"] is None else f"paid after {_days(refund['delay_days'])}"
        rows.append((f"refund on cancellation ({reason.replace('_', ' ')})",
                     f"{refund['share']:.0%} of what was paid", when))
    patience = estimates["patience"]
    rows.append((f"customers' patience ({patience['estimator']})",
                 f"{patience['observed']:,} cancellations seen, {patience['censored']:,} waits cut short",
                 "a wait is cut short when a car was allocated, the maker cancelled or the log ended"))
    if patience["median_days"] is None:
        rows.append(("median patience", "beyond the log",
                     f"{patience.get('surviving_at_last_time', 1.0):.1%} of customers still waited at the longest "
                     "wait seen"))
    else:
        rows.append(("median patience", _days(patience["median_days"]), "half the customers cancel by then"))
    if "shape" in patience:
        rows.append(("Weibull shape, scale", f"{patience['shape']:.2f}, {_days(patience['scale_days'])}",
                     "shape above 1: the urge to cancel grows with waiting"))
    body = "".join(f"<tr><td>{escape(what)}</td><td>{escape(value)}</td><td>{escape(use)}</td></tr>"
                   for what, value, use in rows)
    return ("<h2>What the counterfactual learned from the log</h2>"
            "<table class='learned'><tr><th>what</th><th>from the log</th><th>how the counterfactual uses it</th></tr>"
            f"{body}</table>")


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


def _rejected(rejected: dict[str, int]) -> str:
    if not rejected:
        return "none rejected"
    reasons = ", ".join(f"{count:,} {reason}" for reason, count in sorted(rejected.items()))
    return f"{sum(rejected.values()):,} rejected ({reasons})"


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
         "text-align:right}td:first-child,th:first-child{text-align:left}.wide{overflow-x:auto}"
         ".learned td,.learned th{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:8px}"
         "figure{margin:0}figcaption{max-width:560px;font-size:12px;color:#555}"
         ".notes{font-size:14px;max-width:60em}.notes dt{font-weight:bold}.notes dd{margin:0 0 .6em 1.5em}")
WHY_NO_WAIT = "none of those orders got its car by the end of the log"


def html(summary: dict[str, Any]) -> str:
    log, settings = summary["log"], summary["settings"]
    days = summary["days"]
    trims = log["trims"]
    charts = [
        line_chart("Open orders (backlog)", days, _lines(summary, "backlog")),
        line_chart(f"Prepayment pool held ({log['currency']})", days, _lines(summary, "pool")),
        line_chart("Cancelled orders, cumulative", days, _lines(summary, "cancelled")),
        line_chart("Cars delivered, cumulative", days, _lines(summary, "delivered")),
        bar_figure("Mean wait by trim (days, delivered cars)", trims, _by_trim(summary, "wait_mean"), WHY_NO_WAIT),
        bar_figure("p95 wait by trim (days)", trims, _by_trim(summary, "wait_p95"), WHY_NO_WAIT),
        bar_figure("Cancelled, share of orders by trim", trims, _by_trim(summary, "cancel_rate"),
                   "the log has no order of that trim", percent=True),
    ]
    load = log["load"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>orderbank replay</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Replay of {escape(log['name'])}</h1>"
        f"<p>{log['orders']:,} orders from {escape(log['from'][:10])} to {escape(log['to'][:10])} "
        f"({log['days']} days): {load['applied']:,} events applied, {load['duplicates']:,} duplicates, "
        f"{escape(_rejected(load['rejected']))}. "
        f"Policies replayed with {settings['replications']} replication(s) from seed {settings['seed']}; "
        "policy columns show the mean ± half the 95% interval.</p>"
        f"{_table(summary)}{_fairness_notes(summary)}<div class='charts'>{''.join(charts)}</div>"
        "<h2>The log as the live engine folds it</h2><div class='charts'>"
        f"{''.join(_bank_charts(summary))}</div>"
        f"{eta_section(summary)}"
        f"{_learned(summary['estimates'])}"
        "</body></html>\n"
    )
