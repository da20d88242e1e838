"""The ETA backtest's section of the replay report: the figures per cutoff and per trim, and how calibrated the
bands are."""

from __future__ import annotations

from html import escape
from typing import Any

from orderbank.replay.svg import bar_figure, calibration_chart

NOMINAL = (0.1, 0.5, 0.9)
TRIM_HEAD = ("day", "trim", "open", "delivered later", "80% band covers", "median |error| (d)", "mean error (d)",
             "band width (d)", "actual wait, median (d)", "cancelled later")


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def cutoff_rows(cutoffs: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Each cutoff's figures, the forecast's beside the trailing rule's, as text cells (the report's table and
    `orderbank eta backtest`'s, each with its own headings)."""
    return [(str(cut["day"]), f"{cut['open']:,}", ", ".join(sorted(set(cut["basis"].values()))),
             _cell(f["share_with_eta"], ".0%"), _cell(f["coverage"], ".1%"), _cell(f["median_abs_error_days"], ".1f"),
             _cell(f["mean_error_days"], "+.1f"), _cell(f["band_days"], ".1f"), _cell(t["share_with_eta"], ".0%"),
             _cell(t["median_abs_error_days"], ",.0f"), _cell(t["mean_error_days"], "+,.0f"),
             _cell(cut["median_wait_days"], ".0f"), f"{cut['cancelled_later']:,}", f"{cut['never_delivered']:,}")
            for cut in cutoffs for f, t in [(cut["forecast"], cut["trailing"])]]


def trim_rows(cutoffs: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The forecast's figures for each trim at each cutoff, as text cells under TRIM_HEAD (the report's table and
    `orderbank eta backtest --by-trim`)."""
    return [(str(cut["day"]), trim, f"{part['open']:,}", f"{part['delivered_later']:,}",
             _cell(f["coverage"], ".1%"), _cell(f["median_abs_error_days"], ".1f"), _cell(f["mean_error_days"], "+.1f"),
             _cell(f["band_days"], ".1f"), _cell(part["median_wait_days"], ".0f"), f"{part['cancelled_later']:,}")
            for cut in cutoffs for trim, part in cut["by_trim"].items() for f in [part["forecast"]]]


def _html_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>" for cells in rows)
            + "</table>")


def eta_section(summary: dict[str, Any]) -> str:
    """The section's HTML, or nothing when the replay ran no backtest."""
    eta = summary.get("eta")
    if not eta or not eta["cutoffs"]:
        return ""
    cutoffs = eta["cutoffs"]
    head = ("day", "open", "basis", "with ETA", "80% band covers", "median |error| (d)", "mean error (d)",
            "band width (d)", "trailing rule: with ETA", "median |error| (d)", "mean error (d)",
            "actual wait, median (d)", "cancelled later", "never delivered")
    days = [f"day {cut['day']}" for cut in cutoffs]
    charts = [
        calibration_chart("Calibration: deliveries before the 10th / 50th / 90th percentile", NOMINAL,
                          {f"day {cut['day']}": [cut["forecast"]["below"][k] for k in ("10", "50", "90")]
                           for cut in cutoffs}),
        bar_figure("Share of deliveries inside the 80% band", days,
                   {"forecast": [cut["forecast"]["coverage"] for cut in cutoffs], "target": [0.8 for _ in cutoffs]},
                   "no order given a forecast at that cutoff was delivered by the end of the log", percent=True),
    ]
    return (f"<h2>ETA forecast, backtested ({escape(eta['policy'])})</h2>"
            "<p>At each cutoff the log is folded to that midnight and every open order is given the forecast's "
            "band and the trailing rule's date (position / deliveries a day over 28 days); the rest of the log says "
            "when its car came. Orders cancelled later or never delivered are counted apart, not scored. "
            "Errors in days, + = too late.</p>"
            f"{_html_table(head, cutoff_rows(cutoffs))}<div class='charts'>{''.join(charts)}</div>"
            "<h3>By trim</h3><p>The same figures for each trim's orders. Under a policy that serves higher trims "
            "first, a lower trim waits longest: its dates reach furthest past what the log has shown, so a launch's "
            "good or bad months show most in its figures.</p>"
            f"{_html_table(TRIM_HEAD, trim_rows(cutoffs))}")
