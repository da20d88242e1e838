"""Faults survived: workers SIGKILLed, the broker restarted, workers joining and leaving, under load.

After each fault the test acts as the operator (or supervisor) would: restart what died, wait
until everything is caught up, then check that the HTTP snapshot is the fold of the log byte
for byte, and that every input offset of every partition was applied exactly once or
dead-lettered (tests.support.conservation.conserved). A worker killed with SIGKILL commits nothing on
its way out, so its restart reads some input again: those events are counted as duplicates
ignored, never applied twice.

A worker told to stop after its broker died exits within the stop deadline instead of hanging.

A shard applies its lanes frames strictly in offset order from the offset its changelog reached:
Faust drops (and acks) messages around rebalances, which lost a range of a shard's events here
before the engine read such frames again (orderbank.engine.stream.agents, tests/engine/stream/test_resume.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from orderbank.engine.dev.broker import Broker, BrokerSettings
from orderbank.engine.kafka.producer import EventProducer
from orderbank.engine.settings import Settings
from orderbank.engine.stream.app import EXIT_STOP_DEADLINE, STOP_DEADLINE_S
from orderbank.replay.synth import generate, preset
from tests.support.conservation import Conservation, conserved
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import keyed, produce_raw, read_topic, with_topics
from tests.support.workers import Worker, caught_up, killed, processed, wait_for

pytestmark = pytest.mark.broker
ORDERS = 10_000  # ~22,000 events


def launch(seed: int) -> list[bytes]:
    return [orjson.dumps(doc) for doc in generate(preset("small", ORDERS), seed)]


def poison(line: bytes) -> list[tuple[bytes | None, bytes]]:
    """Bad records that must be dead-lettered, each for another reason, keyed like good ones."""
    doc = {**orjson.loads(line), "event_id": str(uuid.UUID(int=7))}
    return [(b"X-1", b'{"type": "OrderPlaced", "order_id": '),
            (b"X-2", orjson.dumps({**doc, "order_id": "X-2", "type": "OrderCancelled", "seq": 2,
                                   "reason": "customer"})),
            (b"X-3", orjson.dumps({**doc, "order_id": "X-3", "schema_version": 9}))]


def stream(settings: Settings, tmp_path: Path, lines: list[bytes], rate: int) -> subprocess.Popen[bytes]:
    """`orderbank produce` at a fixed rate, in the background."""
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    return subprocess.Popen(
        [sys.executable, "-m", "orderbank.engine.cli", "produce", str(log), "--rate", str(rate),
         "--bootstrap", settings.bootstrap_servers, "--prefix", settings.topic_prefix],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def equals_the_fold(workers: list[Worker], lines: list[bytes], settings: Settings) -> Conservation:
    caught_up(workers, timeout=60)  # catching up takes seconds; a stuck worker should fail fast
    counts = conserved(settings, workers)
    for worker in workers:
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
    return counts


@pytest.mark.parametrize("moment", ["mid-stream", "during recovery", "during a rebalance"])
def test_a_worker_killed_with_sigkill_restarts_without_losing_or_double_counting(
        broker: Broker, tmp_path: Path, moment: str) -> None:
    settings = with_topics(broker.bootstrap, lane_by="model_trim")  # three lanes on shards 0, 1 and 2
    lines = launch(41)
    produce_raw(settings, poison(lines[-1]))
    a, b = Worker(settings, tmp_path, "a").start(), Worker(settings, tmp_path, "b")
    feeding = stream(settings, tmp_path, lines, rate=3000)
    try:
        wait_for([a], lambda: processed([a]) > len(lines) // 4, 60, "worker a to be mid-stream")
        if moment == "during a rebalance":
            b.start()  # joining makes the group rebalance; a dies in the middle of handing shards over
            killed(a)
        else:
            killed(a)
            a.start()
            if moment == "during recovery":
                killed(a)  # as soon as it answers: the group has not settled, the table is being recovered
                a.start()
        assert feeding.wait(120) == 0
        if moment == "during a rebalance":
            a.start()
        counts = equals_the_fold([a, b] if b.proc else [a], lines, settings)
        assert counts.events == len(lines) + 3 and counts.rejected == 3
    finally:
        feeding.kill()
        a.stop()
        b.stop()


class Feeder(threading.Thread):
    """The producer API (idempotent producer) sending a log at a fixed rate, on its own event loop."""

    def __init__(self, settings: Settings, lines: list[bytes], rate: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.lines, self.rate = settings, lines, rate
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._feed())
        except BaseException as exc:  # handed to the test, which asserts there was none
            self.error = exc

    async def _feed(self) -> None:
        started = time.monotonic()
        async with EventProducer(self.settings, client_id="faults-feeder") as producer:
            for number, line in enumerate(self.lines, start=1):
                assert await producer.send(line) is None
                self.sent = number
                if number % 64 == 0:
                    await asyncio.sleep(max(0.0, number / self.rate - (time.monotonic() - started)))
            await producer.flush()


def supervise(worker: Worker, timeout: float = 180) -> int:
    """Wait until the worker is caught up, starting it again whenever it has exited; the restarts."""
    deadline, restarts = time.monotonic() + timeout, 0
    while True:
        try:
            caught_up([worker], timeout=max(1.0, deadline - time.monotonic()))
            return restarts
        except AssertionError:
            if worker.proc is None or worker.proc.poll() is None or time.monotonic() > deadline:
                raise
            restarts += 1
            worker.proc = None
            worker.start()


def test_the_broker_restarted_under_a_producer_and_a_worker(tmp_path: Path) -> None:
    # A broker of its own: restarting the session's one would pull it from under other tests.
    with Broker(BrokerSettings(state_dir=tmp_path / "kafka")) as kafka:
        settings = with_topics(kafka.bootstrap)
        lines = launch(43)
        worker = Worker(settings, tmp_path, "w").start()
        feeder = Feeder(settings, lines, rate=2500)
        feeder.start()
        try:
            # Mid-stream for both: the producer has most of the log still to send (a loaded machine's worker
            # may be far behind it).
            wait_for([worker], lambda: feeder.sent > len(lines) // 4 and processed([worker]) > 0, 60,
                     "the producer and the worker to be mid-stream")
            sent_before = feeder.sent
            kafka.restart()
            feeder.join(120)
            assert not feeder.is_alive() and feeder.error is None and feeder.sent == len(lines) > sent_before
            supervise(worker)
            # Retries after the restart duplicated nothing: the input holds each event once.
            assert len(read_topic(settings, f"{settings.topic_prefix}.events")) == len(lines)
            counts = equals_the_fold([worker], lines, settings)
            assert counts.events == counts.applied == len(lines) and counts.rejected == 0
        finally:
            worker.stop()


def test_a_worker_stopped_after_its_broker_died_exits_within_the_deadline(tmp_path: Path) -> None:
    with Broker(BrokerSettings(state_dir=tmp_path / "kafka")) as kafka:
        settings = with_topics(kafka.bootstrap)
        worker = Worker(settings, tmp_path, "w").start()
        try:
            produce_raw(settings, keyed(launch(47)[:2000]))
            caught_up([worker])
            kafka.kill()
            assert worker.proc is not None
            started = time.monotonic()
            worker.proc.terminate()
            code = worker.proc.wait(STOP_DEADLINE_S + 30)
            took = time.monotonic() - started
        finally:
            worker.stop()
    assert code == EXIT_STOP_DEADLINE and STOP_DEADLINE_S <= took < STOP_DEADLINE_S + 30
    assert "could not stop within" in worker.log_tail(200)


def test_a_second_worker_joining_and_leaving_under_load(broker: Broker, tmp_path: Path) -> None:
    settings = with_topics(broker.bootstrap, lane_by="model_trim")
    lines = launch(47)
    produce_raw(settings, poison(lines[0]))
    a, b = Worker(settings, tmp_path, "a").start(), Worker(settings, tmp_path, "b")
    feeding = stream(settings, tmp_path, lines, rate=1500)
    try:
        wait_for([a], lambda: processed([a]) > len(lines) // 5, 60, "worker a to be mid-stream")
        b.start()
        shards: dict[str, Any] = wait_for([a, b], lambda: (b.health() or {}).get("shards"), 60, "b to own shards")
        assert feeding.poll() is None, "the stream ended before the second worker joined"
        b.stop()
        wait_for([a, b], lambda: len((a.health() or {"shards": {}})["shards"]) == 4, 60, "a to take every shard back")
        assert feeding.wait(120) == 0
        counts = equals_the_fold([a], lines, settings)
        assert shards and counts.events == len(lines) + 3 and counts.rejected == 3
    finally:
        feeding.kill()
        a.stop()
        b.stop()
