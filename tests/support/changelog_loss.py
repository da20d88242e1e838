"""Imported into a worker before Faust starts, makes its table recovery lose changelog records.

It drops, once per changelog partition, every record the consumer hands over while the table
recovers, up to the partition's end: what Faust 0.15 itself does now and then when a worker takes
over partitions (orderbank.engine.stream.agents.RecoveryWatch). The consumer's position is then past the end, the
recovery has applied nothing and, left alone, waits forever. Tests start a worker with it
(`Worker(preload="tests.support.changelog_loss")`) to prove the engine reads such a partition again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)
_getmany = Consumer.getmany
_lost: set[Any] = set()  # changelog partitions whose first pass was dropped


async def _losing_getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    async for tp, message in _getmany(self, timeout):
        if self.app.in_recovery and tp.topic.endswith("-changelog") and tp not in _lost:
            end = self.app.tables.recovery.active_highwaters.get(tp)
            if end is not None and message.offset >= end:
                _lost.add(tp)
                log.warning("changelog_loss: dropped %s up to offset %d", tp, message.offset)
            continue
        yield tp, message


Consumer.getmany = _losing_getmany  # type: ignore[method-assign]
