"""What "equals the fold" means, in one place: a snapshot is the fold's, canonical JSON byte for byte.

The fold of a log, by definition: each line decoded by the event models, every event applied in
order to an empty OrderBank, the lines the decoder rejects skipped (as the CLI's fold counts and
skips them). Every way of producing the projections (tests/test_equals_the_fold.py) and every
stream test asserts its snapshot with `assert_equals_the_fold`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import orjson

from orderbank.projections.bank import BankSettings, OrderBank, canonical
from orderbank.projections.codec import Rejection, decode


def fold_lines(lines: Iterable[bytes], settings: BankSettings | None = None) -> OrderBank:
    """The bank after the fold of a log, each line decoded by the models and applied one by one."""
    bank = OrderBank(settings)
    for line in lines:
        event = decode(line)
        if not isinstance(event, Rejection):
            bank.apply(event)
    return bank


def the_fold(lines: Iterable[bytes], settings: BankSettings | None = None) -> bytes:
    """The fold's snapshot of a log, canonical: the bytes every other way must give."""
    return _the_fold(tuple(lines), settings)


@functools.lru_cache(maxsize=4)  # a stream test compares several snapshots with the fold of one large log
def _the_fold(lines: tuple[bytes, ...], settings: BankSettings | None) -> bytes:
    return canonical(fold_lines(lines, settings).snapshot())


def assert_equals_the_fold(snapshot: bytes, lines: Iterable[bytes], settings: BankSettings | None = None) -> None:
    """`snapshot` (canonical JSON) is byte for byte the fold's snapshot of `lines`."""
    expected = the_fold(lines, settings)
    assert snapshot == expected, differences(snapshot, expected)


def differences(snapshot: bytes, expected: bytes) -> str:
    """Which parts of a snapshot differ from the fold's (a whole launch's bytes are no help)."""
    try:
        got, want = orjson.loads(snapshot), orjson.loads(expected)
    except orjson.JSONDecodeError:
        return f"not a snapshot: {snapshot[:200]!r}"
    if not isinstance(got, dict):
        return f"not a snapshot: {snapshot[:200]!r}"
    parts = [key for key in sorted(want.keys() | got.keys()) if got.get(key) != want.get(key)]
    got_lanes, want_lanes = (doc.get("queue", {}).get("lanes", {}) for doc in (got, want))
    lanes = [lane for lane in sorted(want_lanes.keys() | got_lanes.keys())
             if got_lanes.get(lane) != want_lanes.get(lane)]
    return f"differs from the fold in {parts or 'key order or spelling'}" + (f", lanes {lanes}" if lanes else "")
