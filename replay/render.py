"""Terminal views of the projections (rich tables): what `orderbank fold` and the demo print."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def money(minor: int, currency: str | None = None) -> str:
    """Minor units in major units for people: '515,279,600', or '515,279,600 CNY' with the currency."""
    return f"{minor / 100:,.0f}" + (f" {currency}" if currency else "")


def when(text: str | None) -> str:
    """An ISO 8601 UTC time for people, to the second: '2025-06-26 14:00:00 UTC'; 'no events yet' for none."""
    return "no events yet" if text is None else f"{text[:10]} {text[11:19]} UTC"


def counted(counts: dict[str, int]) -> str:
    """Counts by name for people, largest first: 'seq_gap 8, currency_mismatch 1'."""
    largest_first = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count:,}" for name, count in largest_first)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def flow(window: dict[str, Any]) -> str:
    """A rolling window as 'cancelled / placed': the rate alone misleads once arrivals dry up."""
    return f"{window['cancelled']:,} / {window['placed']:,}"


def band(place: dict[str, Any]) -> str:
    """An ETA as its 80% band in dates with the median: '2025-10-02 .. 2025-10-30 (median 2025-10-12)', or
    'no ETA yet'."""
    if place["eta"] is None:
        return "no ETA yet"
    low, high = place["eta_low"] or "?", place["eta_high"] or "later"
    return f"{low[:10]} .. {high[:10]} (median {place['eta'][:10]})"


def print_snapshot(console: Console, snap: dict[str, Any], stats: dict[str, Any], show_orders: int = 5) -> None:
    rejected = stats["rejected"]
    console.print(f"[bold]Order bank as of {when(snap['as_of'])}[/]  "
                  f"applied {stats['applied']:,}, duplicates {stats['duplicates']:,}, "
                  f"rejected {sum(rejected.values()):,}" + (f" ({counted(rejected)})" if rejected else ""))
    queue = Table(title=f"Queue ({snap['queue']['policy']})")
    for col in ("lane", "open", "cars/day (28d)", "ETA basis", "first and last orders: position, ETA (80% band)"):
        queue.add_column(col)
    for lane in snap["queue"]["lanes"].values():
        places = list(lane["positions"].items())
        shown = places if len(places) <= show_orders else [*places[:show_orders - 1], places[-1]]
        queue.add_row(lane["lane"], f"{lane['open']:,}", f"{lane['throughput_per_day']:.1f}",
                      lane["eta_note"] or lane["eta_basis"],
                      "\n".join(f"#{p['position']:,} {oid} {band(p)}" for oid, p in shown))
    console.print(queue)

    pool = Table(title="Prepayment pool (totals, major units)")
    for col in ("currency", "open", "held", "deposits", "balances", "refunds owed", "demanded, unpaid",
                "overdue", "realised"):
        pool.add_column(col, justify="right")
    for currency, t in snap["pool"]["totals"].items():
        pool.add_row(currency, f"{t['open_orders']:,}", money(t["held"]), money(t["deposits"]),
                     money(t["balances"]), money(t["refunds_owed"]), money(t["demanded_outstanding"]),
                     f"{t['overdue_orders']:,} / {money(t['overdue_amount'])}", money(t["realised"]))
    console.print(pool)

    cancels = Table(title="Cancellation rates")
    for col in ("trim", "7 days: cancelled / placed", "28 days", "launch-week cohort", "overall"):
        cancels.add_column(col, justify="right")
    windows = {(w["window_days"], w["trim"]): w for w in snap["cancellations"]["windows"]}
    cohorts = snap["cancellations"]["cohorts"]
    first = cohorts[0]["cohort"] if cohorts else None
    by_cohort = {c["trim"]: c for c in cohorts if c["cohort"] == first}
    for trim in sorted({t for _, t in windows}):
        cohort = by_cohort.get(trim)
        cancels.add_row(trim, flow(windows[(7, trim)]), flow(windows[(28, trim)]),
                        pct(cohort["share_cancelled"]) if cohort else "-",
                        pct(snap["cancellations"]["overall"]["rate"]) if trim == "*" else "")
    console.print(cancels)
