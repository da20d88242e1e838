"""The cyclic garbage collector's settings in an engine process (the worker, its ingest, the benchmarks beside them).

The engine's objects are freed by reference counting; the collector only finds cycles, which the engine does not
make. What it costs is its pauses: each collection walks every object of its generations, and a full one walks
everything the process holds, which stops every event in the process for as long (a live page's latency).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)
"""The generation thresholds. A worker keeps every order of its shards (hundreds of thousands of objects) and
allocates several per event; with CPython's default (700 allocations between young collections) the collector
took about a quarter of a shard's time (bench/stream.py). Young collections 70 times rarer cost little memory."""


def tune_gc() -> None:
    """Set the thresholds, and take what the process holds once started out of the collector's sight: its modules'
    objects (a few hundred thousand) are never garbage, yet a full collection walked them all, 50-160 ms pauses
    in an ingest process at a launch's peak (bench/latency.py). Called once the process is started; what is
    garbage then is collected first, so nothing is kept that would have been freed."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()
