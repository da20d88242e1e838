"""The ETA backtest's section of the replay report: the figures per cutoff, and how calibrated the bands are."""

from __future__ import annotations

from html import escape
from typing import Any

from orderbank.replay.svg import bar_figure, calibration_chart

NOMINAL = (0.1, 0.5, 0.9)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def eta_section(summary: dict[str, Any]) -> str:
    """The section's HTML, or nothing when the replay ran no backtest."""
    eta = summary.get("eta")
    if not eta or not eta["cutoffs"]:
        return ""
    cutoffs = eta["cutoffs"]
    head = ("day", "open", "basis", "with ETA", "80% band covers", "median |error| (d)", "mean error (d)",
            "band width (d)", "trailing rule: with ETA", "median |error| (d)", "mean error (d)",
            "actual wait, median (d)", "cancelled later", "never delivered")
    rows = []
    for cut in cutoffs:
        f, t = cut["forecast"], cut["trailing"]
        cells = (str(cut["day"]), f"{cut['open']:,}", ", ".join(sorted(set(cut["basis"].values()))),
                 _cell(f["share_with_eta"], ".0%"), _cell(f["coverage"], ".1%"),
                 _cell(f["median_abs_error_days"], ".1f"), _cell(f["mean_error_days"], "+.1f"),
                 _cell(f["band_days"], ".1f"), _cell(t["share_with_eta"], ".0%"),
                 _cell(t["median_abs_error_days"], ",.0f"), _cell(t["mean_error_days"], "+,.0f"),
                 _cell(cut["median_wait_days"], ".0f"), f"{cut['cancelled_later']:,}", f"{cut['never_delivered']:,}")
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    table = "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"
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
            f"{table}<div class='charts'>{''.join(charts)}</div>")
