"""Launch histories for the page tests: the yu7 preset scaled down, as JSON lines (decoded once per run)."""

from __future__ import annotations

from functools import cache

import orjson

from orderbank.projections.codec import Rejection, decode
from orderbank.projections.events import Event
from orderbank.replay.synth import generate, preset


@cache
def launch(orders: int = 3000, seed: int = 5) -> tuple[bytes, ...]:
    return tuple(orjson.dumps(doc) for doc in generate(preset("yu7", orders), seed))


@cache
def events(orders: int = 3000, seed: int = 5) -> tuple[Event, ...]:
    return tuple(e for e in map(decode, launch(orders, seed)) if not isinstance(e, Rejection))
