"""The seed case's headline figures (docs/seed.md), read off a loaded log.

Used to calibrate the `yu7` synthetic preset and to sanity-check real logs: orders on launch
day, cars delivered in the first 30 days and in the 30 days before the cut (2 to 31 October 2025 for
a 26 June launch cut on 1 November: the article's "October", a day short of the calendar month),
orders still open and the share cancelled at the cut, the balance demand's due days, and the share
of slots transferred.
"""

from __future__ import annotations

import numpy as np

from orderbank.projections.orders import US_PER_DAY
from orderbank.replay.orderlog import NEVER, OrderLog

NOVEMBER_FIRST = 128
"""Days from the 26 June 2025 launch day to 1 November 2025, the day of the seed article."""


def headline(log: OrderLog, cut_day: int = NOVEMBER_FIRST) -> dict[str, float]:
    """The figures at midnight UTC starting day `cut_day` after the launch day."""
    launch = log.origin_us
    cut = launch + cut_day * US_PER_DAY
    first = int(log.placed_us.min())
    delivered = log.delivered_us
    entered = log.entered_us < cut
    gone_by_cut = ((delivered != NEVER) & (delivered < cut)) | ((log.cancelled_us != NEVER) & (log.cancelled_us < cut))
    demanded = log.demand_us != NEVER
    return {
        "launch_day_orders": float((log.placed_us < launch + US_PER_DAY).sum()),
        "month_one_deliveries": float(((delivered != NEVER) & (delivered < first + 30 * US_PER_DAY)).sum()),
        "last_month_deliveries": float(((delivered >= cut - 30 * US_PER_DAY) & (delivered < cut)).sum()),
        "open_at_cut": float((entered & ~gone_by_cut).sum()),
        "cancelled_share_at_cut": float(((log.cancelled_us != NEVER) & (log.cancelled_us < cut)).sum() / entered.sum()),
        "balance_due_days": float(np.median(log.due_us[demanded] - log.demand_us[demanded]) / US_PER_DAY)
        if demanded.any() else 0.0,
        "transferred_share": float((log.transfers > 0).mean()),
    }
