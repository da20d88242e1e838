"""Imported into a worker before Faust starts, makes one event raise inside the bank's reducer.

The event whose id `<data dir>/raise-on-event` holds (written before the worker starts) raises a
RuntimeError out of `OrderBank._change` once the order and the projections were changed: a reducer
bug that some input finds, leaving the bank half-changed. Tests start a worker with it
(`Worker(preload="tests.support.raising_event")`) to prove the shard dead-letters that event, puts the
bank back as it was before it and goes on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orderbank.projections.bank import OrderBank
from orderbank.projections.orders import Order

_poison = (Path(os.environ["ORDERBANK_DATA_DIR"]) / "raise-on-event").read_text().strip()
_change = OrderBank._change


def _raising_change(self: OrderBank, order: Order, event: Any, occurred_us: int) -> None:
    _change(self, order, event, occurred_us)
    if str(event.event_id) == _poison:
        raise RuntimeError(f"raising_event: injected for event {_poison}")


OrderBank._change = _raising_change  # type: ignore[method-assign]
