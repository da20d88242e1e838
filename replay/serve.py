"""The queue simulator at the heart of the counterfactual: who gets each car, under one policy.

One lane: orders arrive, wait in priority order, and are served one per slot (a car to
allocate, or a free server). An order whose patience deadline comes before a slot has left:
abandonment is resolved lazily, when the order reaches the head of the queue, which gives the
same allocation as checking every deadline as it passes (a cancelled order never changes who
else is served) at a fraction of the work. Priorities are integer ranks (the sorted policy
keys), so the heap holds plain ints; a big batch of arrivals (the launch-day rush) is sorted once
into a run read from its front instead, which costs no heap operation per car. A slot that finds
nobody waiting waits for the next arrival (a built car waits in stock; an idle server takes the
next customer at once).

Slots are either a fixed schedule (the cars the log shows were allocated) or come from
servers: with `service`, each allocation frees its server again after a service time, which is
how the Erlang-A check runs the same loop as an M/M/n+M queue.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
NEVER = -1
FOREVER = np.iinfo(np.int64).max
_PAST = FOREVER + 1
"""Later than any time and greater than any rank (a Python int: no overflow)."""
_TAKEN = -1


@dataclass(frozen=True)
class Queue:
    """One lane's orders as the simulator sees them; every array is indexed by order (0..n-1)."""

    arrival_us: I64
    rank: I64
    """Priority when the order arrives: the lower, the sooner served. Unique."""
    deadline_us: I64
    """When the order leaves unless served first (patience, or a calendar cancellation); FOREVER if never."""
    rekey_us: I64 | None = None
    """When the order's priority changes to `rekey_rank` (a policy that reads payments); NEVER if it does not."""
    rekey_rank: I64 | None = None


@dataclass(frozen=True)
class Served:
    allocated_us: I64
    """When each order was allocated a slot, NEVER if it was not."""
    slot: I64
    """Which slot (index into the schedule, or the service count) each order got, NEVER if none."""


def serve(queue: Queue, slots_us: I64, service: Callable[[], int] | None = None) -> Served:
    """Allocate slots in time order, each to the best-ranked order still waiting at its time.

    `slots_us` is the sorted schedule; with `service` it is the servers' first free times and
    every allocation at t frees its server again at t + service()."""
    n = len(queue.arrival_us)
    by_arrival = np.argsort(queue.arrival_us, kind="stable")
    # Each list ends in a sentinel past FOREVER, so the loop never checks its length.
    arrival_t, arrival_o = [*queue.arrival_us[by_arrival].tolist(), _PAST], by_arrival.tolist()
    arrival_of = queue.arrival_us.tolist()
    current = queue.rank.tolist()  # _TAKEN once allocated: a rank popped that is not its order's current one is stale
    deadline = queue.deadline_us.tolist()
    rekeys = _rekeys(queue)
    rekey_t = [*(at for at, _, _ in rekeys), _PAST]
    rekeyed = np.array([(order, rank) for _, order, rank in rekeys], dtype=np.int64).reshape(-1, 2)
    ranks = np.concatenate((queue.rank, rekeyed[:, 1]))
    owner_of = np.zeros(int(ranks.max(initial=-1)) + 1, dtype=np.int64)  # which order holds each rank
    owner_of[ranks] = np.concatenate((np.arange(n), rekeyed[:, 0]))
    owner = owner_of.tolist()
    allocated = [NEVER] * n
    slot_of = [NEVER] * n
    schedule = [*slots_us.tolist(), FOREVER]  # the last slot, or the servers' free times never running out
    if service is not None:
        heapq.heapify(schedule)
    # The waiting ranks: a heap, and a sorted run taken from the front (`taken`), which a big batch of arrivals
    # (the launch-day rush) becomes, cheaper than heap operations; both end in the sentinel.
    waiting, run, taken = [_PAST], [_PAST], 0
    idle: deque[tuple[int, int]] = deque()
    next_arrival = next_rekey = next_slot = 0

    while True:
        now = schedule[next_slot] if service is None else schedule[0]
        while idle and arrival_t[next_arrival] <= now:  # a slot that found nobody goes to the next arrival
            order, at_us = arrival_o[next_arrival], arrival_t[next_arrival]
            next_arrival += 1
            _, slot = idle.popleft()
            allocated[order], slot_of[order], current[order] = at_us, slot, _TAKEN
            if service is not None:
                heapq.heappush(schedule, at_us + service())
                now = min(now, schedule[0])  # the freed server may come before later arrivals
        if arrival_t[next_arrival] <= now:
            last = bisect.bisect_right(arrival_t, now, next_arrival)
            batch = list(map(current.__getitem__, arrival_o[next_arrival:last]))
            next_arrival = last
            if len(batch) > len(waiting) + len(run) - taken:
                run, taken = sorted([*run[taken:], *waiting, *batch])[:-1], 0  # the two sentinels last: keep one
                waiting = [_PAST]
            else:
                for rank in batch:
                    heapq.heappush(waiting, rank)
        while rekey_t[next_rekey] <= now:
            _, order, rank = rekeys[next_rekey]
            next_rekey += 1
            if current[order] != _TAKEN:
                current[order] = rank
                if arrival_of[order] <= now:  # admitted already, under its old rank
                    heapq.heappush(waiting, rank)
        if now == FOREVER:
            break
        slot = next_slot
        next_slot += 1
        if service is not None:
            heapq.heappop(schedule)
        while True:
            if run[taken] < waiting[0]:
                rank = run[taken]
                taken += 1
            elif waiting[0] != _PAST:
                rank = heapq.heappop(waiting)
            else:
                idle.append((now, slot))
                break
            order = owner[rank]
            if current[order] == rank and deadline[order] > now:
                allocated[order], slot_of[order], current[order] = now, slot, _TAKEN
                if service is not None:
                    heapq.heappush(schedule, now + service())
                break
    return Served(np.array(allocated, dtype=np.int64), np.array(slot_of, dtype=np.int64))


def _rekeys(queue: Queue) -> list[tuple[int, int, int]]:
    if queue.rekey_us is None or queue.rekey_rank is None:
        return []
    orders = np.flatnonzero(queue.rekey_us != NEVER)
    sequence = orders[np.argsort(queue.rekey_us[orders], kind="stable")]
    return list(zip(queue.rekey_us[sequence].tolist(), sequence.tolist(), queue.rekey_rank[sequence].tolist(),
                    strict=True))
