"""Lanes frames (orderbank.engine.stream.frames): the input records a shard applies, packed and unpacked."""

from __future__ import annotations

import pytest

from orderbank.engine.stream.frames import FrameBuilder, FrameError, unpack


def test_frames_keep_bytes_keys_and_coordinates() -> None:
    builder = FrameBuilder("in")
    builder.add(2, 7, None, b"\xff not json")
    builder.add(0, 9, b"k", b"{}")
    frame = unpack(builder.build())
    assert frame.topic == "in"
    assert [(e.partition, e.offset, e.key, e.value) for e in frame.entries] == [(2, 7, None, b"\xff not json"),
                                                                               (0, 9, b"k", b"{}")]
    builder.add(1, 3, b"k", b"{}", checked=True)
    builder.add(1, 4, b"k", b"{}", id_taken=True)
    assert [(e.id_taken, e.checked) for e in unpack(builder.build()).entries] == [
        (False, False), (False, False), (False, True), (True, False)]
    for corrupt in (b"nope", builder.build()[:-1], builder.build() + b"x"):
        with pytest.raises(FrameError):
            unpack(corrupt)
