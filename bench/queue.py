"""Queue-position cost against lane size: O(log n) means microseconds per operation grow only slowly
from 1,000 to 300,000 open orders. Prints per-operation times for each size and the ratio to the smallest.

Placements arrive in placed_at order, as a launch does. bounded-overtake pays extra for a placement
that arrives after later-placed ones (the orders behind it are re-keyed); `late us` is the cost of a
placement arriving 100 placements late.

    .venv/bin/python bench/queue.py [--sizes 1000,10000,100000,300000] [--ops 20000]
"""

from __future__ import annotations

import argparse
import random
import time

from orderbank.projections.orders import Order
from orderbank.projections.policies import BoundedOvertake, Fifo, HighTrimFirst, PaidFirst, Policy
from orderbank.projections.queue import QueueProjection


def order(i: int, rng: random.Random) -> Order:
    rank = rng.choice((0, 1, 2))
    return Order(order_id=f"O{i:07d}", customer_id="c", model="YU7", trim=str(rank), trim_rank=rank, lane="YU7",
                 currency="CNY", list_price=100, deposit=10, placed_us=i * 1000, cohort="w")


def per_op_us(policy: Policy, size: int, ops: int, seed: int) -> tuple[float, float, float, float]:
    """Microseconds per add, position query, remove+re-add and late add, in a lane of `size` open orders."""
    rng = random.Random(seed)
    queue = QueueProjection(policy)
    orders = [order(i, rng) for i in range(size)]
    for o in orders:
        queue.add(o)
    probes = [orders[rng.randrange(size)] for _ in range(ops)]
    start = time.perf_counter()
    for o in probes:
        queue.position_of(o.order_id, "YU7", 0)
    query = time.perf_counter() - start
    start = time.perf_counter()
    for o in probes:
        queue.rekey(o)
    rekey = time.perf_counter() - start
    extra = [order(size + i, rng) for i in range(ops)]
    start = time.perf_counter()
    for o in extra:
        queue.add(o)
    add = time.perf_counter() - start
    late_add, lates, next_id = 0.0, max(1, ops // 100), size + ops
    for _ in range(lates):
        for _ in range(100):
            queue.add(order(next_id, rng))
            next_id += 1
        late = order(next_id, rng)
        late.placed_us -= 100 * 1000 + 500  # placed before the last 100 orders of the lane
        next_id += 1
        start = time.perf_counter()
        queue.add(late)
        late_add += time.perf_counter() - start
    return add / ops * 1e6, query / ops * 1e6, rekey / ops * 1e6, late_add / lates * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000,300000")
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'policy':<18}{'open orders':>12}{'add us':>9}{'query us':>10}{'rekey us':>10}{'late us':>10}"
          f"  ratios vs {sizes[0]:,}")
    policies: list[Policy] = [Fifo(), HighTrimFirst(), PaidFirst(), BoundedOvertake(k=1000)]
    for policy in policies:
        base: tuple[float, ...] | None = None
        for size in sizes:
            figures = per_op_us(policy, size, args.ops, args.seed)
            base = base or figures
            ratios = "/".join(f"{f / b:.2f}" for f, b in zip(figures, base, strict=True))
            add, query, rekey, late = figures
            print(f"{policy.name:<18}{size:>12,}{add:>9.2f}{query:>10.2f}{rekey:>10.2f}{late:>10.1f}  {ratios}")


if __name__ == "__main__":
    main()
