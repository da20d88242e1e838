"""Imported into a worker before Faust starts, makes one shard's frames raise outside the per-event guard.

While `<data dir>/stuck-shard` exists, holding a lanes partition, `Shard.apply` raises for that shard's
frames before applying anything: every frame of it crashes the shards agent, which Faust restarts, and
the shard cannot advance. Tests start a worker with it (`Worker(preload="tests.support.stuck_shard")`),
create the file to see /health turn degraded, and delete it to see the shard catch up and /health ok.
"""

from __future__ import annotations

import os
from pathlib import Path

from orderbank.engine.stream.frames import Entry, Frame
from orderbank.engine.stream.shards import Shard
from orderbank.projections.codec import Rejection

_marker = Path(os.environ["ORDERBANK_DATA_DIR"]) / "stuck-shard"
_apply = Shard.apply


def _stuck_apply(self: Shard, frame: Frame, offset: int) -> list[tuple[Entry, Rejection]] | None:
    try:
        stuck = int(_marker.read_text())
    except (OSError, ValueError):
        stuck = None
    if stuck == self.partition and offset > self.offset:
        raise RuntimeError(f"stuck_shard: shard {stuck} injected")
    return _apply(self, frame, offset)


Shard.apply = _stuck_apply  # type: ignore[method-assign]
