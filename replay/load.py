"""Load an event log into columns (`OrderLog`) by the bank's rules, a block of lines at a time.

Three steps, each in its own module: decode (`orderbank.replay.decode`: msgspec and numpy on the fast path,
`orderbank.projections.codec` for any line that leaves it; a reader thread reads the blocks and looks at their
lines while the last one decodes), settle (`orderbank.replay.lifecycle`: which events apply, in
bulk for the orders that go the expected way, one by one through `orderbank.projections.orders.check` for
the others) and fold the applied events into per-order columns (`orderbank.replay.columns`); the production
plans applied are kept as events (they are no order's). Rejections
carry the reason, rule and message the bank gives them; the first `MAX_EXAMPLES` are kept with
their line numbers. `exact=True` takes the slow path for every line and every order: what the
tests compare the fast path with.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable

from orderbank.projections.bank import BankSettings
from orderbank.replay.columns import order_log
from orderbank.replay.decode import BlockReader, ExactPath, decode_block, no_rows, scan
from orderbank.replay.lifecycle import Orders, settle
from orderbank.replay.orderlog import LoadReport, OrderLog
from orderbank.replay.rows import Names, Rows
from orderbank.replay.shapes import PLANNED
from orderbank.replay.source import LineSource, ahead

LoadProgress = Callable[[int], None]
"""Called with the number of lines read so far, after each block."""
MAX_EXAMPLES = 20


def load(source: LineSource, settings: BankSettings | None = None, progress: LoadProgress | None = None,
         exact: bool = False) -> OrderLog:
    """The log's orders as columns (`exact`: every line through orderbank.projections.codec and every order through
    the bank's rules one event at a time; slow, for checking the fast path)."""
    settings = settings or BankSettings()
    # Decoding makes millions of short-lived objects and no cycles: the cyclic collector would
    # only rescan them again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        names, decoded, reader = Names(), ExactPath(), None if exact else BlockReader()
        parts: list[Rows] = []
        lines = 0
        for block in ahead(map(scan, source.blocks())):  # reading and a first look run in a thread
            rows, count = decode_block(block, lines + 1, names, decoded, reader)
            parts.append(rows)
            lines += count
            if progress is not None:
                progress(lines)
        rows = Rows.concat(parts) if parts else no_rows()
        orders = Orders.of(rows)
        settlement = settle(rows, orders, settings, source, exact)
        rejections = sorted(decoded.rejections + settlement.rejections, key=lambda item: item[0])
        report = LoadReport(
            lines=lines, applied=int(settlement.applied.sum()), duplicates=decoded.duplicates + settlement.duplicates,
            rejected=dict(Counter(rejection.reason.value for _, rejection in rejections)),
            examples=[{"line": number, **rejection.as_dict()} for number, rejection in rejections[:MAX_EXAMPLES]],
            exact_lines=len(decoded.lines | settlement.decoded))
        planned = rows.line[settlement.applied & (rows.kind == PLANNED)].tolist()
        return order_log(rows, orders, settlement.applied, names, settings, report,
                         tuple(decoded.plans[number] for number in planned))
    finally:
        if collecting:
            gc.enable()
