"""The business gauges of a worker's /metrics, read back, and what the bank says they should be."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from orderbank.projections.bank import OrderBank

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(rendered: bytes) -> Samples:
    """Every sample of a /metrics page, by name and labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(rendered.decode())
            for sample in family.samples}


def business(samples: Samples) -> Samples:
    """The business gauges among them, but the rate (NaN where nothing was placed: never equal to itself)."""
    names = ("orderbank_open_orders", "orderbank_pool_held_major_units", "orderbank_overdue_major_units",
             "orderbank_orders_placed_28d", "orderbank_orders_cancelled_28d", "orderbank_dead_letters")
    return {key: value for key, value in samples.items() if key[0] in names}


def what_the_bank_says(bank: OrderBank) -> Samples:
    """The same figures off the bank's published snapshot and stats, money / 100 (CNY's minor units)."""
    snapshot = bank.snapshot()
    (window,) = [w for w in snapshot["cancellations"]["windows"] if w["window_days"] == 28 and w["trim"] == "*"]
    expected: Samples = {("orderbank_orders_placed_28d", ()): window["placed"],
                         ("orderbank_orders_cancelled_28d", ()): window["cancelled"]}
    for lane, queue in snapshot["queue"]["lanes"].items():
        expected[("orderbank_open_orders", (("lane", lane),))] = queue["open"]
    for currency, totals in snapshot["pool"]["totals"].items():
        expected[("orderbank_pool_held_major_units", (("currency", currency),))] = totals["held"] / 100
        expected[("orderbank_overdue_major_units", (("currency", currency),))] = totals["overdue_amount"] / 100
    for reason, count in bank.stats()["rejected"].items():
        expected[("orderbank_dead_letters", (("reason", reason),))] = count
    return expected
