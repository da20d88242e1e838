"""One rule for one message on every path: the producer and `orderbank fold` (`decode`), a shard's frame
(`decode_batch`, msgspec first) and the replay lab's loader (its own msgspec shapes and numpy checks)
decide every adversarial input the same way: the same event values, or a rejection for the same reason.

Found by an attack on the worker: `{...}{...}` passed the frame decoder's plain-line check, msgspec's line
decoder returned two values for one message, and the shard crashed on that frame for good.
"""

from __future__ import annotations

import pytest

from orderbank.projections.codec import MAX_EVENT_BYTES, Rejection, decode, decode_batch, encode
from orderbank.replay.history import replay_history
from orderbank.replay.load import load
from orderbank.replay.source import MemorySource
from tests.support import factories as f
from tests.support.factories import values_of

GOOD = encode(f.placed("P-1"))
OTHER = encode(f.placed("P-2"))
ADVERSARIAL = {
    "concatenated": GOOD + OTHER,
    "concatenated_spaced": GOOD + b" " + OTHER,
    "concatenated_same": GOOD + GOOD,
    "trailing_garbage": GOOD + b"x",
    "trailing_comma": GOOD + b",",
    "trailing_nul": GOOD + b"\x00",
    "leading_bom": b"\xef\xbb\xbf" + GOOD,
    "nul_inside": GOOD.replace(b'"P-1"', b'"P\x00-1"'),
    "deep_nesting": GOOD[:-1] + b',"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "deep_object": b"{" + b'"a":{' * 3000 + b"}" * 3001,
    "duplicate_key": GOOD[:-1] + b',"seq":2}',
    "duplicate_type": GOOD[:-1] + b',"type":"OrderCancelled"}',
    "nan": GOOD.replace(b'"trim_rank":0', b'"trim_rank":NaN'),
    "infinity": GOOD.replace(b'"trim_rank":0', b'"trim_rank":Infinity'),
    "float_int": GOOD.replace(b'"trim_rank":0', b'"trim_rank":0.0'),
    "exponent_int": GOOD.replace(b'"trim_rank":0', b'"trim_rank":0e0'),
    "bool_int": GOOD.replace(b'"trim_rank":0', b'"trim_rank":false'),
    "string_int": GOOD.replace(b'"seq":1', b'"seq":"1"'),
    "huge_int": GOOD.replace(b'"seq":1', b'"seq":18446744073709551615'),
    "epoch_time": GOOD.replace(GOOD[GOOD.index(b'"occurred_at":'):].split(b",")[0], b'"occurred_at":1751018400'),
    "array": b"[" + GOOD + b"]",
    "string": b'"' + GOOD.replace(b'"', b'\\"') + b'"',
    "empty_object": b"{}",
    "lone_surrogate": GOOD.replace(b'"P-1"', b'"P-\\ud800"'),
    "invalid_utf8": GOOD.replace(b'"P-1"', b'"P-\xff"'),
    "too_large": GOOD[:-1] + b',"pad":"' + b"x" * MAX_EVENT_BYTES + b'"}',
}


def verdict(result: object) -> object:
    return result.reason.value if isinstance(result, Rejection) else values_of(result)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_every_decoding_path_gives_one_verdict(name: str) -> None:
    raw = ADVERSARIAL[name]
    alone = verdict(decode(raw))
    in_a_frame = decode_batch([OTHER, raw, OTHER])
    assert len(in_a_frame) == 3  # one value per message, whatever the message holds
    assert verdict(in_a_frame[1]) == alone
    assert [verdict(in_a_frame[0]), verdict(in_a_frame[2])] == [verdict(decode(OTHER))] * 2
    assert verdict(decode_batch([raw])[0]) == alone
    if b"\n" in raw:
        return  # a log line cannot hold a newline; the replay reads lines
    source = MemorySource((OTHER, raw))
    fast, exact = load(source), load(source, exact=True)
    assert fast.report.as_dict() == exact.report.as_dict()
    bank, _ = replay_history(source)
    assert fast.report.rejected == dict(bank.rejections)
    assert (fast.report.applied, fast.report.duplicates) == (bank.applied, bank.duplicates)
    assert fast.order_id == list(bank.orders)


def test_wrongly_typed_values_are_rejected_not_coerced() -> None:
    for name in ("bool_int", "string_int", "float_int", "epoch_time", "huge_int"):
        result = decode(ADVERSARIAL[name])
        assert isinstance(result, Rejection) and result.reason.value == "invalid_field", name
        assert result.field in ("trim_rank", "seq", "occurred_at"), name
