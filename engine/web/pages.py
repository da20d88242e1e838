"""The pages' view-models: facts (orderbank.engine.web.facts) turned into the sentences, tables and charts a
person reads. Every figure is formatted here (orderbank.engine.web.format); the templates only lay it out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from orderbank.engine.web import format as fmt
from orderbank.engine.web.facts import DashboardFacts, OrderFacts, PolicyFacts
from orderbank.projections.cancellations import ALL
from orderbank.projections.orders import US_PER_DAY, from_micros
from orderbank.projections.standing import Happening
from orderbank.projections.trends import POOL_FIGURES
from orderbank.replay.svg import line_chart

SMALL = (360, 220)  # charts are drawn at a phone's width and scale up
MOST_DAYS_SHOWN = 1000
STATUS = {"open": "In the queue", "delivered": "Delivered", "cancelled": "Cancelled"}


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    note: str = ""
    key: str = ""  # names the figure for tests and scripts (data-testid)


def chart(title: str, times: Sequence[int], lines: Mapping[str, Sequence[float | None]], summary: str) -> Markup:
    """An inline SVG line chart with its summary as the caption a screen reader reads instead."""
    span = (times[-1] - times[0]) / US_PER_DAY if times else 0
    labels = [_tick(t, span) for t in times]
    svg = line_chart(title, labels, lines, SMALL).replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1)
    return Markup('<figure class="chart">{}<figcaption>{}</figcaption></figure>').format(Markup(svg), summary)


def _tick(us: int, span_days: float) -> str:
    moment = from_micros(us)
    return f"{moment.day} {moment:%b}" if span_days < 300 else f"{moment:%b %Y}"


def _trend(what: str, times: Sequence[int], values: Sequence[float | None], shown: Any) -> str:
    known = [(t, v) for t, v in zip(times, values, strict=True) if v is not None] if values else []
    if not known:
        return f"{what}: no figures yet."
    (t0, v0), (t1, v1) = known[0], known[-1]
    return f"{what}: {shown(v0)} on {fmt.date(t0)}, {shown(v1)} on {fmt.date(t1)}."


# -- a customer's order -----------------------------------------------------------------------------------------

def _what(step: Happening, currency: str) -> str:
    amount = fmt.money(step.amount, currency) if step.amount is not None else ""
    match step.kind:
        case "placed":
            return f"Order placed, deposit {amount}"
        case "demanded":
            return f"Payment of {amount} requested, due {fmt.date(step.due_us)}"
        case "paid" if step.at_us is None:  # a worker's state: the payments' total
            return f"Payments received so far: {amount}"
        case "paid":
            return f"Payment of {amount} received"
        case "transferred":
            return "Order transferred to a new holder"
        case "delivered":
            return "Car delivered"
        case "cancelled":
            return f"Order cancelled, refund of {amount} owed"
        case "refunded":
            return f"Refund of {amount} paid"
    return step.kind


def _dues(facts: OrderFacts, now_us: int) -> list[Row]:
    """Each demand not yet covered by payments (they settle the oldest first), with its due date."""
    payments = facts.view["payments"]
    if facts.view["status"] != "open":
        return []
    currency, covered, rows = payments["currency"], payments["received"], []
    for step in facts.history:
        if step.kind != "demanded" or step.amount is None:
            continue
        settled = min(covered, step.amount)
        covered -= settled
        if step.amount > settled and step.due_us is not None:
            late = step.due_us < now_us
            rows.append(Row(fmt.money(step.amount - settled, currency),
                            f"due {fmt.date(step.due_us)} ({fmt.relative(step.due_us, now_us)})",
                            "overdue" if late else ""))
    return rows


BASIS = {"blended": "from the maker's production plan and the cars built so far",
         "plan": "from the maker's production plan", "observed": "from the cars built lately",
         "none": "no plan declared and no car delivered yet"}
"""What an order's ETA rests on (its lane's `eta_basis`, docs/eta.md), in words."""


def _day(text: str | None) -> str | None:
    moment = fmt.iso_micros(text)
    return fmt.date(moment) if moment else None


def order_page(facts: OrderFacts) -> dict[str, Any]:
    view, payments = facts.view, facts.view["payments"]
    currency = payments["currency"]
    now = fmt.iso_micros(view["as_of"]) or 0
    eta = fmt.iso_micros(view["eta"])
    status = view["status"]
    standing = facts.standing
    why: list[str] = []
    if standing is not None:
        ahead = "No order is" if standing.ahead == 0 else (
            "1 order is" if standing.ahead == 1 else f"{fmt.count(standing.ahead)} orders are")
        why.append(f"{ahead} ahead of yours in the {view['lane']} queue.")
        if standing.ahead:
            later = standing.overtakes
            why.append("None of them was placed after yours." if later == 0 else
                       f"{fmt.count(later)} of them {'was' if later == 1 else 'were'} placed after yours and "
                       "rank ahead under the active policy.")
    money = [Row("List price", fmt.money(payments["list_price"], currency), key="list-price"),
             Row("Paid so far", fmt.money(payments["paid"], currency),
                 f"deposit {fmt.money(payments['deposit'], currency)} and "
                 f"{fmt.money(payments['received'], currency)} in payments since" if payments["received"]
                 else "the deposit", "paid"),
             Row("Requested so far", fmt.money(payments["demanded"], currency), key="demanded"),
             Row("Still to pay on requests", fmt.money(payments["outstanding"], currency),
                 f"{fmt.money(payments['overdue'], currency)} of it overdue" if payments["overdue"] else "",
                 "outstanding")]
    owed = payments["refund_due"] - payments["refunded"]
    if payments["refund_due"]:
        money.append(Row("Refund owed to you", fmt.money(owed, currency),
                         f"{fmt.money(payments['refunded'], currency)} already refunded", "refund-owed"))
    times = [t for t, _ in facts.positions]
    positions = [float(p) for _, p in facts.positions]
    position_chart = chart("Your position in the queue", times, {"position": positions},
                           _trend("Position", times, positions, lambda v: f"{v:,.0f}")) if len(times) > 1 else None
    return {
        "order_id": view["order_id"], "lane": view["lane"], "model": view["model"], "trim": view["trim"],
        "status": STATUS.get(status, status), "open": status == "open",
        "placed": fmt.date(fmt.iso_micros(view["placed_at"])), "as_of": fmt.date_time(now),
        "position": fmt.count(view["position"]) if view["position"] else None,
        "open_in_lane": fmt.count(view["open_in_lane"]),
        "eta": fmt.date(eta) if eta else None, "eta_relative": fmt.relative(eta, now) if eta else None,
        "eta_low": _day(view.get("eta_low")), "eta_high": _day(view.get("eta_high")),
        "eta_basis": BASIS.get(view.get("eta_basis") or "none", ""),
        "why": why, "rule": standing.rule if standing else None,
        "money": money, "dues": _dues(facts, now),
        "history": [Row(fmt.date_time(step.at_us) if step.at_us is not None else "", _what(step, currency))
                    for step in facts.history],
        "history_from_events": facts.history_from_events,
        "chart": position_chart, "window_days": facts.window_days,
    }


# -- operations -------------------------------------------------------------------------------------------------

def _per_day(times: Sequence[int], cumulative: Sequence[int]) -> list[float | None]:
    """Deliveries per day between samples, from cumulative counts."""
    out: list[float | None] = [None]
    for i in range(1, len(times)):
        days = (times[i] - times[i - 1]) / US_PER_DAY
        out.append((cumulative[i] - cumulative[i - 1]) / days if days > 0 else None)
    return out


def _currency(facts: DashboardFacts) -> str:
    currencies = sorted({str(row["currency"]) for row in facts.buckets}) or ["CNY"]
    return currencies[0]


def _lanes(facts: DashboardFacts) -> tuple[list[dict[str, str]], list[Markup]]:
    trends, window = facts.trends, facts.window_days
    times = trends["times"]
    rows, backlog_lines, delivery_lines, clear_lines = [], {}, {}, {}
    for name in sorted(trends["lanes"]):
        lane = trends["lanes"][name]
        per_day = lane["delivered_window"][-1] / window
        open_now = lane["backlog"][-1]
        rows.append({"lane": name, "open": fmt.count(open_now), "per_day": f"{per_day:,.1f}",
                     "delivered": fmt.count(lane["delivered"][-1]),
                     "to_clear": fmt.duration_days(open_now / per_day if per_day else None)})
        backlog_lines[name] = [float(v) for v in lane["backlog"]]
        delivery_lines[name] = _per_day(times, lane["delivered"])
        clear_lines[name] = [b / (d / window) if d and b / (d / window) <= MOST_DAYS_SHOWN else None
                             for b, d in zip(lane["backlog"], lane["delivered_window"], strict=True)]
    total = [float(sum(v)) for v in zip(*backlog_lines.values(), strict=True)] if backlog_lines else []
    charts = [
        chart("Open orders (backlog)", times, backlog_lines, _trend("Open orders", times, total, fmt.count)),
        chart("Cars delivered per day", times, delivery_lines,
              _trend("Cars delivered per day, all lanes", times,
                     [sum(v for v in day if v is not None) for day in zip(*delivery_lines.values(), strict=True)]
                     if delivery_lines else [], lambda v: f"{v:,.1f}")),
        chart("Days to clear the backlog", times, clear_lines,
              f"Days to clear the backlog at the last {window} days' delivery rate, per lane: "
              + "; ".join(f"{row['lane']} {row['to_clear']}" for row in rows)
              + f" now. Times over {MOST_DAYS_SHOWN:,} days (the first deliveries into a launch's backlog) are left "
                "out."),
    ]
    return rows, charts


def _pool(facts: DashboardFacts, currency: str) -> tuple[list[Row], list[Markup], list[dict[str, str]],
                                                          list[dict[str, str]]]:
    totals = {"held": 0, "demanded_outstanding": 0, "overdue_amount": 0, "overdue_orders": 0,
              "refunds_owed": 0, "open_orders": 0}
    by: dict[str, dict[str, dict[str, int]]] = {"trim": {}, "cohort": {}}
    for row in facts.buckets:
        if row["currency"] != currency:
            continue
        for name in totals:
            totals[name] += row[name]
        for axis, groups in by.items():
            acc = groups.setdefault(row[axis], dict.fromkeys(("held", "demanded_outstanding", "overdue_amount",
                                                               "refunds_owed", "open_orders"), 0))
            for name in acc:
                acc[name] += row[name]
    now = [Row("Held for customers", fmt.money(totals["held"], currency),
               f"{fmt.count(totals['open_orders'])} open orders and refunds still owed", "held"),
           Row("Requested, not yet paid", fmt.money(totals["demanded_outstanding"], currency), key="unpaid"),
           Row("Overdue", fmt.money(totals["overdue_amount"], currency),
               f"{fmt.count(totals['overdue_orders'])} orders past a due date", "overdue"),
           Row("Refunds owed", fmt.money(totals["refunds_owed"], currency), key="refunds-owed")]
    series = facts.pool
    times, rows = series["times"], series["rows"].get(currency, [])
    labels = {"held": "held", "demanded_outstanding": "unpaid", "overdue_amount": "overdue",
              "refunds_owed": "refunds"}
    lines = {labels[name]: [r[i] / 100 for r in rows] for i, name in enumerate(POOL_FIGURES)}
    since = f" Sampled since {fmt.date_time(facts.pool_since_us)}." if facts.pool_since_us else ""
    charts = [chart(f"Prepayment pool ({currency})", times, lines,
                    _trend("Held", times, lines["held"], lambda v: fmt.money_short(v, currency)) + since)
              ] if len(times) > 1 else []

    def table(axis: str) -> list[dict[str, str]]:
        return [{axis: key, "open": fmt.count(acc["open_orders"]), "held": fmt.money(acc["held"], currency),
                 "demanded": fmt.money(acc["demanded_outstanding"], currency),
                 "overdue": fmt.money(acc["overdue_amount"], currency),
                 "owed": fmt.money(acc["refunds_owed"], currency)} for key, acc in sorted(by[axis].items())]

    return now, charts, table("trim"), table("cohort")


def _cancellations(facts: DashboardFacts) -> tuple[list[dict[str, str]], list[Markup], list[dict[str, str]]]:
    snapshot, trends = facts.cancellations, facts.trends
    windows: dict[str, dict[int, Any]] = {}
    for w in snapshot["windows"]:
        windows.setdefault(w["trim"], {})[w["window_days"]] = w
    rates = [{"trim": "all trims" if trim == ALL else trim,
              "rate_7": fmt.share(by_days[7]["rate"]) if 7 in by_days else fmt.UNKNOWN,
              "rate_28": fmt.share(by_days[28]["rate"]) if 28 in by_days else fmt.UNKNOWN,
              "placed_28": fmt.count(by_days[28]["placed"]) if 28 in by_days else fmt.UNKNOWN,
              "cancelled_28": fmt.count(by_days[28]["cancelled"]) if 28 in by_days else fmt.UNKNOWN}
             for trim, by_days in sorted(windows.items(), key=lambda item: (item[0] != ALL, item[0]))]
    times, rolling = trends["times"], trends["rolling"]
    lines = {kind: [n / 7 for n in rolling[f"{kind}_7d"]] for kind in ("placed", "cancelled")} if rolling else {}
    overall = snapshot["overall"]
    charts = [chart("Orders placed and cancelled a day", times, lines,
                    _trend("Cancellations a day, 7-day average", times, lines["cancelled"], lambda v: f"{v:,.1f}")
                    + f" In all, {fmt.count(overall['cancelled'])} of {fmt.count(overall['placed'])} orders "
                    f"({fmt.share(overall['rate'])}) were cancelled.")] if lines else []
    trims = sorted({c["trim"] for c in snapshot["cohorts"]} - {ALL})
    cohorts: dict[str, dict[str, str]] = {}
    for c in snapshot["cohorts"]:
        row = cohorts.setdefault(c["cohort"], {"cohort": c["cohort"]})
        if c["trim"] == ALL:
            row.update({"placed": fmt.count(c["placed"]), "cancelled": fmt.count(c["cancelled"]),
                        "share": fmt.share(c["share_cancelled"]), "open": fmt.count(c["open"])})
        else:
            row[f"trim:{c['trim']}"] = fmt.share(c["share_cancelled"])
    for row in cohorts.values():
        row["trims"] = " · ".join(f"{t} {row.get(f'trim:{t}', fmt.UNKNOWN)}" for t in trims)
    return rates, charts, [cohorts[k] for k in sorted(cohorts)]


def _overall(snapshot: Mapping[str, Any]) -> Row:
    overall = snapshot["overall"]
    return Row("Cancelled, all orders", fmt.share(overall["rate"]),
               f"{fmt.count(overall['cancelled'])} of {fmt.count(overall['placed'])} orders placed")


def dashboard_page(facts: DashboardFacts) -> dict[str, Any]:
    currency = _currency(facts)
    lanes, lane_charts = _lanes(facts)
    pool_now, pool_charts, pool_trims, pool_cohorts = _pool(facts, currency)
    rates, rate_charts, cohorts = _cancellations(facts)
    return {
        "as_of": fmt.date_time(facts.as_of_us) if facts.as_of_us else "no events yet",
        "computed_at": facts.computed_at, "source": facts.source, "policy": facts.policy,
        "window_days": facts.window_days,
        "lanes": lanes, "lane_charts": lane_charts,
        "pool_now": pool_now, "pool_charts": pool_charts, "pool_trims": pool_trims, "pool_cohorts": pool_cohorts,
        "rates": rates, "rate_charts": rate_charts, "cohorts": cohorts,
        "cancelled": _overall(facts.cancellations),
        "rejections": [Row(reason.replace("_", " "), fmt.count(n)) for reason, n in facts.rejections.items()],
        "counts": Row("Events applied", fmt.count(facts.applied),
                      f"{fmt.count(facts.duplicates)} duplicates ignored; {fmt.count(facts.orders)} orders"),
        "dead_letters": facts.dead_letters,
        "workers": [_worker(w, facts.computed_at) for w in facts.workers],
    }


def _worker(health: Mapping[str, Any], now: float) -> dict[str, str]:
    shards = health.get("shards", {})
    written = [s["written_at"] for s in shards.values() if s.get("written_at")]
    return {"worker": str(health.get("worker", "?")), "status": str(health.get("status", "unknown")),
            "shards": ", ".join(sorted(shards, key=int)) or "none",
            "processed": fmt.count(sum(s.get("processed", 0) for s in shards.values())),
            "lag": fmt.count(health.get("ingest", {}).get("lag", 0)),
            "frames": fmt.count(health.get("frames_waiting", 0)),
            "published": "yes" if all(s.get("published") for s in shards.values()) else "catching up",
            "written": f"{max(0.0, now - max(written)):,.0f} s ago" if written else fmt.UNKNOWN}


def policy_page(facts: PolicyFacts) -> dict[str, Any]:
    return {"spec": facts.spec, "name": facts.name, "rule": facts.rule, "describe": facts.describe,
            "parameters": [Row(name, fmt.count(value) if isinstance(value, int) else str(value))
                           for name, value in facts.parameters.items()],
            "report_url": facts.report_url}
