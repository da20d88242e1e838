"""Terminal views of the projections (rich tables): what `orderbank fold` and the demo print."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def money(minor: int) -> str:
    return f"{minor / 100:,.0f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def flow(window: dict[str, Any]) -> str:
    """A rolling window as 'cancelled / placed': the rate alone misleads once arrivals dry up."""
    return f"{window['cancelled']:,} / {window['placed']:,}"


def print_snapshot(console: Console, snap: dict[str, Any], stats: dict[str, Any], show_orders: int = 5) -> None:
    console.print(f"[bold]Order bank as of {snap['as_of']}[/]  "
                  f"applied {stats['applied']:,}, duplicates {stats['duplicates']:,}, "
                  f"rejected {sum(stats['rejected'].values()):,} {stats['rejected'] or ''}")
    queue = Table(title=f"Queue ({snap['queue']['policy']})")
    for col in ("lane", "open", "cars/day (28d)", "first orders: position, ETA"):
        queue.add_column(col)
    for lane in snap["queue"]["lanes"].values():
        head = list(lane["positions"].items())[:show_orders]
        queue.add_row(lane["lane"], f"{lane['open']:,}", f"{lane['throughput_per_day']:.1f}",
                      "\n".join(f"#{p['position']} {oid} {p['eta'] or '-'}" for oid, p in head))
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
