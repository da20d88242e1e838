"""What the pages must show, by data-testid, worked out from the bank itself (its snapshot and order view)."""

from __future__ import annotations

from orderbank.engine.web import format as fmt
from orderbank.projections.bank import OrderBank
from orderbank.projections.standing import order_view


def dashboard_figures(bank: OrderBank) -> dict[str, str]:
    snapshot = bank.snapshot()
    totals = snapshot["pool"]["totals"]["CNY"]
    return {**{f"open-{name}": fmt.count(lane["open"]) for name, lane in snapshot["queue"]["lanes"].items()},
            "pool-held": fmt.money(totals["held"], "CNY"),
            "pool-unpaid": fmt.money(totals["demanded_outstanding"], "CNY"),
            "pool-overdue": fmt.money(totals["overdue_amount"], "CNY"),
            "pool-refunds-owed": fmt.money(totals["refunds_owed"], "CNY"),
            "cancelled-share": fmt.share(snapshot["cancellations"]["overall"]["rate"]),
            "applied": fmt.count(bank.applied), "as-of": fmt.date_time(bank.now_us)}


def order_figures(bank: OrderBank, order_id: str) -> dict[str, str]:
    view = order_view(bank, order_id)
    money = view["payments"]
    return {"position": fmt.count(view["position"]), "open-in-lane": fmt.count(view["open_in_lane"]),
            "eta": fmt.date(fmt.iso_micros(view["eta"])), "paid": fmt.money(money["paid"], "CNY"),
            "demanded": fmt.money(money["demanded"], "CNY"), "outstanding": fmt.money(money["outstanding"], "CNY")}
