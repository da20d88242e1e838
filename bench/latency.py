"""Latency: how long an event takes from its send to the projections that show it, at fixed input rates.

For each rate (`--rates`, events/s), a fresh engine worker (bench/load.py's WorkerProcess: its own app id and
topics, the memory store) is started and waited for until /health shows its shards and its ingest ready;
then the yu7 launch (orderbank.replay.synth, seed `--seed`) is produced in log order at that rate for
`--seconds` (a prefix of rate x seconds events; at most the whole log), paced in ticks of 10 ms: each tick
hands the events then due to the producer in one batch per partition and records their send time. Meanwhile:
- positions: the engine's positions topic is read; an order's first record (it entered its lane) answers its
  OrderPlaced, its first record with another status than open answers its closing event (cancelled, delivered):
  the time from the event's send to the record's arrival;
- pool: a shard publishes its pool rows and positions together, so the positions records tell, per lane and
  input partition, how far in that partition the shard had folded when it published (the records of
  placements and closures carry their events' place); an event is reflected in the pool by the first pool
  record of its lane written (Kafka timestamp) at or after the publish that covered it: send to its arrival;
- /orders/{id}: `--sample` placements a second are polled on the worker's HTTP view until it knows the order:
  send to the first 200, to within the time between polls (50 ms, and a tenth of the time waited so far past
  half a second: pollers at a fixed pace would load a worker that is behind with more requests the further
  behind it is);
- input lag: every second, the input topic's end offsets minus the ingest group's committed offsets;
- CPU while sending (bench/cpu.py, from /proc): the cores the broker, the worker, its ingest process and this
  process kept busy: "otherwise idle" holds only if the worker's core is its own.
Prints per rate p50 / p99 / max of each (ms), the input lag over time and the cores busy. The worker runs with
the settings of this checkout, overridable through ORDERBANK_* variables in the environment (e.g.
ORDERBANK_PUBLISH_INTERVAL_S), which the worker inherits: how the trade-off of docs/streaming.md ("Latency") was
measured.

    .venv/bin/python bench/latency.py [--rates 3000,20000] [--seconds 60] [--sample 20] [--seed 1]
                                      [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `python bench/latency.py` puts bench/ first on the path, where bench/replay.py would shadow the package;
# the repository root instead, for `bench.load`.
sys.path[:] = [str(Path(__file__).resolve().parents[1]),
               *(entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent)]

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from bench.cpu import Timeline, Usage, available  # noqa: E402
from bench.load import PARTITIONS, TOKEN, Lag, WorkerProcess, wait_for, yu7_prefix  # noqa: E402
from orderbank.engine.dev.broker import Broker, BrokerSettings  # noqa: E402
from orderbank.engine.kafka.partitioning import partition_for  # noqa: E402
from orderbank.engine.kafka.sink import producer_config  # noqa: E402
from orderbank.engine.kafka.topics import Topics, ensure  # noqa: E402
from orderbank.engine.settings import Settings  # noqa: E402
from orderbank.engine.stream.collector import tune_gc  # noqa: E402

TICK_S = 0.01
POLL_S = 0.05  # how often a sampled order is asked for on /orders/{id}: more would load the worker
POLL_BACKOFF = 0.1  # ... and at most every tenth of the time it has waited (a 10% precision)
WINDOW_S = 5.0
DRAIN_S = 30.0  # after the last send, how long to wait for the projections to show every event
CLOSING = {"OrderCancelled", "VehicleDelivered"}


@dataclass
class Sent:
    """The events sent so far: when, and where each sits in its input partition."""

    at: list[float] = field(default_factory=list)  # event -> monotonic send time
    place: list[tuple[str, int, int]] = field(default_factory=list)  # event -> (lane, input partition, index)
    placed: dict[str, int] = field(default_factory=dict)  # order -> its OrderPlaced event
    closed: dict[str, int] = field(default_factory=dict)  # order -> its closing event
    lane: dict[str, str] = field(default_factory=dict)  # order -> lane (the model: the engine's default lane_by)
    counts: list[int] = field(default_factory=lambda: [0] * PARTITIONS)


@dataclass
class Seen:
    """What the projection topics showed, and when (monotonic arrival, Kafka timestamp of the write)."""

    positions: dict[int, float] = field(default_factory=dict)  # event -> arrival of the record answering it
    # (lane, input partition) -> publishes in order: (index folded up to, Kafka timestamp ms)
    covered: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    pool: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))  # lane -> (ts, at)
    orders: list[float] = field(default_factory=list)  # latencies of the /orders polls, seconds
    lag: list[int] = field(default_factory=list)  # input lag, once a second


async def produce(settings: Settings, docs: list[dict[str, object]], rate: float, sent: Sent,
                  sampled: asyncio.Queue[tuple[str, float]], sample: float, seed: int) -> None:
    """Send the events at `rate`, one batch per partition every tick; every placement with probability
    sample/rate goes to the /orders pollers."""
    topic, rng = Topics(settings).events.name, random.Random(seed)
    producer = AIOKafkaProducer(**producer_config(settings, "bench-latency"))
    await producer.start()
    try:
        started, done = time.monotonic(), 0
        while done < len(docs):
            due = min(len(docs), int((time.monotonic() - started) * rate) + 1)
            batches: dict[int, Any] = {}  # partition -> its aiokafka BatchBuilder
            now = time.monotonic()
            for i in range(done, due):
                doc = docs[i]
                order, kind = str(doc["order_id"]), doc["type"]
                key = order.encode()
                partition = partition_for(key, PARTITIONS)
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=orjson.dumps(doc), timestamp=None)
                if kind == "OrderPlaced":
                    sent.placed[order], sent.lane[order] = i, str(doc["model"])
                    if rng.random() < sample / rate:
                        sampled.put_nowait((order, now))
                elif kind in CLOSING:
                    sent.closed[order] = i
                sent.at.append(now)
                sent.place.append((sent.lane.get(order, ""), partition, sent.counts[partition]))
                sent.counts[partition] += 1
            for partition, batch in batches.items():
                await producer.send_batch(batch, topic, partition=partition)
            done = due
            await asyncio.sleep(max(0.0, started + done / rate - time.monotonic(), TICK_S / 2))
        await producer.flush()
    finally:
        await producer.stop()


async def watch(settings: Settings, sent: Sent, seen: Seen, stop: asyncio.Event) -> None:
    """Read the positions and pool topics until `stop`, noting what each record answers."""
    topics = Topics(settings)
    consumer = AIOKafkaConsumer(**settings.kafka_kwargs(), group_id=None, auto_offset_reset="earliest",
                                fetch_max_wait_ms=20)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t.name, p) for t in (topics.positions, topics.pool)
                         for p in range(t.partitions)])
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50, max_records=50_000)
            at = time.monotonic()
            for tp, records in batch.items():
                if tp.topic == topics.pool.name:
                    for r in records:
                        seen.pool[orjson.loads(r.key)[0]].append((r.timestamp, at))
                    continue
                for r in records:
                    # Canonical JSON (orderbank.engine.stream.publish): no need to parse it to read the status.
                    order, still_open = r.key.decode(), b'"status":"open"' in r.value
                    # A closed order's first record answers its placement too (both fell in one publish).
                    answers = [sent.placed.get(order)] + ([] if still_open else [sent.closed.get(order)])
                    for event in answers:
                        if event is not None and event not in seen.positions:
                            seen.positions[event] = at
                            lane, partition, index = sent.place[event]
                            covered = seen.covered[(lane, partition)]
                            if not covered or index > covered[-1][0]:
                                covered.append((index, r.timestamp))
    finally:
        await consumer.stop()


async def poll_orders(port: int, sampled: asyncio.Queue[tuple[str, float]], seen: Seen) -> None:
    """Ask the worker for each sampled order until it knows it."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as session:
        async def one(order: str, at: float) -> None:
            while time.monotonic() - at < DRAIN_S:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"http://127.0.0.1:{port}/orders/{order}?local=1") as response:
                        if response.status == 200:
                            seen.orders.append(time.monotonic() - at)
                            return
                await asyncio.sleep(max(POLL_S, (time.monotonic() - at) * POLL_BACKOFF))

        polls: set[asyncio.Task[None]] = set()
        while True:
            order, at = await sampled.get()
            task = asyncio.create_task(one(order, at))
            polls.add(task)
            task.add_done_callback(polls.discard)


async def run_rate(worker: WorkerProcess, docs: list[dict[str, object]], rate: float, sample: float,
                   seed: int, timeline: Timeline) -> tuple[Sent, Seen, Usage]:
    """The events sent, what the projections showed, and the CPU spent while sending."""
    settings, sent, seen, stop = worker.settings, Sent(), Seen(), asyncio.Event()
    sampled: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    watching = asyncio.create_task(watch(settings, sent, seen, stop))
    polling = asyncio.create_task(poll_orders(worker.port, sampled, seen))
    async with Lag(settings) as lag:
        timeline.sample()
        started, wall, cpu = time.monotonic(), time.time(), time.process_time()
        feeding = asyncio.create_task(produce(settings, docs, rate, sent, sampled, sample, seed))
        drained_at, usage = None, None
        while drained_at is None or time.monotonic() - drained_at < DRAIN_S:
            await asyncio.sleep(1.0 - (time.monotonic() - started) % 1.0)
            timeline.sample()
            # The end offsets are read before the committed ones: a commit in between counts as no lag. (The lanes
            # lag of Lag.now is left out: Faust commits every 2.8 s, so it says more of that than of the shards.)
            seen.lag.append(max(0, (await lag.now())[0]))
            if feeding.done() and drained_at is None:
                await feeding  # raises the producer's error, if any
                drained_at = time.monotonic()
                usage = Usage({**timeline.spent(wall, time.time()), "this bench": time.process_time() - cpu},
                              time.time() - wall)
            if drained_at is not None and len(seen.positions) == len(sent.placed) + len(sent.closed):
                break
    await asyncio.sleep(1.0)  # the last pool records, and the last /orders polls
    stop.set()
    polling.cancel()
    await watching
    assert usage is not None
    return sent, seen, usage


def pool_latencies(sent: Sent, seen: Seen) -> tuple[list[float], int]:
    """Per event of a placed order: send to the first pool record of its lane written at or after the publish
    that covered it; and how many events no publish was seen to cover."""
    out, missing = [], 0
    pool = {lane: sorted(rows) for lane, rows in seen.pool.items()}
    for event, (lane, partition, index) in enumerate(sent.place):
        if not lane:
            continue  # a plan stream's event, or an order never placed: no pool row is its
        covered = seen.covered.get((lane, partition), [])
        k = bisect.bisect_left(covered, (index, -1))
        rows = pool.get(lane, [])
        j = bisect.bisect_left(rows, (covered[k][1], -1.0)) if k < len(covered) else len(rows)
        if j == len(rows):
            missing += 1
        else:
            out.append(rows[j][1] - sent.at[event])
    return out, missing


def line(name: str, seconds: list[float], missing: int) -> str:
    if not seconds:
        return f"  {name:12} no figures ({missing:,} not seen)"
    p50, p99 = np.percentile(np.array(seconds) * 1000, [50, 99])
    return (f"  {name:12} {len(seconds):>9,} {p50:8.0f} {p99:8.0f} {max(seconds) * 1000:8.0f}"
            + (f"   ({missing:,} not seen within {DRAIN_S:.0f} s)" if missing else ""))


def report(sent: Sent, seen: Seen) -> None:
    answered = [seen.positions[e] - sent.at[e] for e in seen.positions]
    expected = len(sent.placed) + len(sent.closed)
    pool, pool_missing = pool_latencies(sent, seen)
    print(f"  {'':12} {'events':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(line("positions", answered, expected - len(answered)))
    print(line("pool", pool, pool_missing))
    print(line("/orders/{id}", seen.orders, 0))
    lags = seen.lag
    print(f"  input lag (events), once a second: max {max(lags, default=0):,}; {' '.join(f'{lag:,}' for lag in lags)}")
    # When in the run the slow ones were sent: a warm-up, a pause of the worker, or all along.
    print(f"  positions p99 ms per {WINDOW_S:.0f} s of sending: {p99s(sent, seen, WINDOW_S)}")
    print(f"  ... in the first {WINDOW_S:.0f} s, per second: {p99s(sent, seen, 1.0, until=WINDOW_S)}")


def p99s(sent: Sent, seen: Seen, width: float, until: float = float("inf")) -> str:
    """The positions p99 (ms) of the events sent in each `width` seconds of sending, up to `until`."""
    groups: dict[int, list[float]] = defaultdict(list)
    for event, at in seen.positions.items():
        if (since := sent.at[event] - sent.at[0]) < until:
            groups[int(since // width)].append(at - sent.at[event])
    return " ".join(f"{np.percentile(groups[g], 99) * 1000:.0f}" for g in sorted(groups))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="3000,20000", help="events/s, comma-separated: one worker each")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each rate is offered")
    parser.add_argument("--sample", type=float, default=20.0, help="placements a second polled on /orders/{id}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    docs = [orjson.loads(value) for _, value in yu7_prefix(args.seed, int(max(rates) * args.seconds))]
    # This process times every event: its own full collections over the launch's documents (up to 0.3 s while
    # sending) would be counted as the engine's latency.
    tune_gc()
    timeline = Timeline()
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = stack.enter_context(Broker(BrokerSettings(state_dir=tmp / "kafka")))
            bootstrap = broker.bootstrap
            if broker.pid is not None:
                timeline.watch(broker.pid, "broker")
        for rate in rates:
            name = f"latency-{uuid.uuid4().hex[:8]}"
            settings = Settings(bootstrap_servers=bootstrap, app_id=name, topic_prefix=name,
                                input_partitions=PARTITIONS)
            asyncio.run(ensure(settings))
            worker = WorkerProcess(settings, tmp).start()
            stack.callback(worker.stop)
            if worker.proc is not None:
                timeline.watch(worker.proc.pid, "worker")
            wait_for(lambda w=worker: (w.processed() is not None and ingest_ready(w)) or None, 120, "a ready worker")
            offered = docs[:int(rate * args.seconds)]
            print(f"{rate:,.0f} events/s for {len(offered) / rate:.0f} s: {len(offered):,} events of the yu7 "
                  f"launch (seed {args.seed}) into {name}.events ({PARTITIONS} partitions), Kafka at {bootstrap}",
                  flush=True)
            sent, seen, usage = asyncio.run(run_rate(worker, offered, rate, args.sample, args.seed, timeline))
            report(sent, seen)
            if available():
                print(f"  cores busy while sending ({os.cpu_count()} here): {usage.busy()}")
            worker.stop()
            if worker.proc is not None:
                timeline.forget(worker.proc.pid)


def ingest_ready(worker: WorkerProcess) -> bool:
    """Whether /health says ok and the ingest reads every input partition."""
    status, body = worker.get("/health")
    health = orjson.loads(body) if status == 200 else {}
    return health.get("status") == "ok" and len(health.get("ingest", {}).get("partitions", [])) == PARTITIONS


if __name__ == "__main__":
    main()
