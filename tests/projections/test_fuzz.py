"""Fuzzing the decoder and the reducers: malformed, truncated, oversized, wrong-typed, out-of-order,
duplicate and illegal-transition events never raise; each is rejected with a specific reason and
the good events around them are applied."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbank.projections.bank import Verdict
from orderbank.projections.codec import MAX_EVENT_BYTES, Reason, Rejection, decode, decode_batch, encode
from tests import REPO_ROOT
from tests.support import factories as f
from tests.support.factories import values_of
from tests.support.fuzz_target import feed, seeded_bank

GOOD = [orjson.loads(encode(e)) for e in (
    f.placed("N"), f.demanded("A", 2, 1, 100), f.received("A", 2, 1, 100), f.transferred("A", 2, 1),
    f.cancelled("A", 2, 1), f.delivered("A", 2, 1), f.refunded("B", 3, 2, 100))]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid event, broken in one of many ways."""
    doc: dict[str, Any] = dict(draw(st.sampled_from(GOOD)))
    how = draw(st.sampled_from(["drop", "retype", "add", "truncate", "oversize", "garbage", "seq", "order"]))
    key = draw(st.sampled_from(sorted(doc)))
    if how == "drop":
        del doc[key]
    elif how == "retype":
        doc[key] = draw(JSON_VALUES)
    elif how == "add":
        doc[draw(st.text(min_size=1, max_size=10))] = draw(JSON_VALUES)
    elif how == "seq":
        doc["seq"] = draw(st.integers(-5, 10))
    elif how == "order":
        doc["order_id"] = draw(st.sampled_from(["A", "B", "C", "Z", "N"]))
    raw = orjson.dumps(doc)
    if how == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if how == "oversize":
        return raw + b" " * MAX_EVENT_BYTES
    if how == "garbage":
        return draw(st.binary(max_size=200))
    return raw


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=5))
def test_broken_events_are_rejected_and_good_ones_still_apply(batch: list[bytes]) -> None:
    bank = seeded_bank()
    for raw in batch:
        assert isinstance(feed(bank, raw), Verdict | Rejection)
    # Whatever came before, good events still apply.
    assert feed(bank, encode(f.placed("FRESH"))) is Verdict.APPLIED
    assert feed(bank, encode(f.received("FRESH", 2, 9, 123))) is Verdict.APPLIED
    assert bank.orders["FRESH"].received == 123


@settings(max_examples=300, deadline=None)
@given(st.lists(mutated() | st.sampled_from(GOOD).map(orjson.dumps), max_size=30))
def test_batch_decoding_equals_one_by_one(raws: list[bytes]) -> None:
    assert [values_of(event) for event in decode_batch(raws)] == [values_of(decode(raw)) for raw in raws]


def test_batch_decoding_cannot_be_shifted_by_crafted_lines() -> None:
    one, two = orjson.dumps(GOOD[0]), orjson.dumps(GOOD[3])
    raws = [b'{"a":"}', b'{"b":"}', one + b"," + two, one + b"\n" + two, two, b"", b"{}", one]
    assert [values_of(event) for event in decode_batch(raws)] == [values_of(decode(raw)) for raw in raws]


def test_each_kind_of_breakage_has_its_own_reason() -> None:
    bank = seeded_bank()
    cases = {
        b'{"type": "OrderPlaced"': Reason.MALFORMED_JSON,
        b"[]": Reason.NOT_AN_OBJECT,
        b'{"type": "Teleported"}': Reason.UNKNOWN_TYPE,
        orjson.dumps({**GOOD[0], "schema_version": 99}): Reason.UNSUPPORTED_VERSION,
        orjson.dumps({**GOOD[2], "amount": "lots"}): Reason.INVALID_FIELD,
        orjson.dumps(GOOD[0]) + b" " * MAX_EVENT_BYTES: Reason.TOO_LARGE,
        encode(f.received("Z", 2, 1, 5)): Reason.UNKNOWN_ORDER,
        encode(f.received("A", 5, 1, 5)): Reason.SEQ_GAP,
        encode(f.delivered("B", 3, 5)): Reason.ILLEGAL_TRANSITION,
    }
    for raw, reason in cases.items():
        outcome = feed(bank, raw)
        assert isinstance(outcome, Rejection) and outcome.reason is reason, (raw[:60], outcome)
    assert feed(bank, encode(f.received("A", 2, 1, 5))) is Verdict.APPLIED
    assert feed(bank, encode(f.received("A", 2, 1, 5))) is Verdict.DUPLICATE
    assert dict(bank.rejections) == {"unknown_order": 1, "seq_gap": 1, "illegal_transition": 1}


def test_atheris_finds_no_crash() -> None:
    """Coverage-guided fuzzing (libFuzzer via atheris) of the same target, bounded in runs."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    target = REPO_ROOT / "tests" / "support" / "fuzz_target.py"
    result = subprocess.run([sys.executable, str(target), "-runs=20000", "-seed=1", "-max_len=4096"],
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 20000 runs" in result.stderr
