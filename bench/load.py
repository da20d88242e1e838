"""Load: one worker under a sustained event rate (lag, memory, throughput), then its recovery time after a kill.

(a) sustained: the yu7 preset (orderbank.replay.synth, 1,112,602 events for seed 1) is streamed in log order at `--rate`
    events/s for at most `--duration` seconds (a prefix of rate x duration events when that is fewer) into a
    4-partition input topic, against one worker (`orderbank worker`, memory store). Every second:
    input lag (end offsets of the input topic minus the ingest group's committed offsets), lanes lag (end
    offsets of the lanes topic minus the Faust group's committed offsets), the worker's RSS (/proc) and the
    events it has processed. Then the producer stops and the worker drains.
(b) recovery: the worker that processed the log is killed (SIGKILL) and started again; timed until its
    shards are restored (/health counts every event) and /snapshot answers. With the memory store (the
    worker of (a): everything is re-read from the changelog) and, if rocksdict is installed, with RocksDB
    (a second app reading the same input; its data dir is kept across the kill).

    .venv/bin/python bench/load.py [--rate 6000] [--duration 180] [--seed 1] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

# `python bench/load.py` puts bench/ first on the path, where bench/replay.py would shadow the package;
# the repository root instead, for `bench.stream`.
sys.path[:] = [str(Path(__file__).resolve().parents[1]),
               *(entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent)]

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from orderbank.engine.dev.broker import Broker, BrokerSettings  # noqa: E402
from orderbank.engine.dev.children import stop_child  # noqa: E402
from orderbank.engine.dev.ports import free_port  # noqa: E402
from orderbank.engine.kafka.sink import producer_config  # noqa: E402
from orderbank.engine.kafka.topics import Topics, ensure  # noqa: E402
from orderbank.engine.settings import Settings  # noqa: E402
from orderbank.engine.stream.app import APP  # noqa: E402
from orderbank.replay.synth import generate, preset  # noqa: E402

PARTITIONS = 4
TOKEN = secrets.token_urlsafe(24)  # the worker's service token, for /snapshot
WARM_S = 30.0  # the worker counts as warm after this many seconds of load


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started
    produced: int
    processed: int
    input_lag: int
    lanes_lag: int
    rss_mib: float


class WorkerProcess:
    """One engine worker as a child process, configured through ORDERBANK_* variables."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder, self.port = settings, folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        s = self.settings
        env = {**os.environ, "ORDERBANK_BOOTSTRAP_SERVERS": s.bootstrap_servers, "ORDERBANK_APP_ID": s.app_id,
               "ORDERBANK_TOPIC_PREFIX": s.topic_prefix, "ORDERBANK_INPUT_PARTITIONS": str(PARTITIONS),
               "ORDERBANK_STORE": s.store, "ORDERBANK_WEB_PORT": str(self.port),
               "ORDERBANK_DATA_DIR": str(self.folder / s.app_id), "ORDERBANK_WEB_SERVICE_TOKEN": TOKEN}
        with (self.folder / f"{s.app_id}.log").open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "faust", "-A", APP, "worker", "-l", "info"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.proc.returncode}; see {self.folder}")
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""
        except OSError:
            return 0, b""

    def processed(self, *, published: bool = False) -> int | None:
        """Events counted by all shards (None until every shard is held, and published if asked)."""
        status, body = self.get("/health")
        shards = orjson.loads(body)["shards"].values() if status == 200 else []
        if len(shards) != PARTITIONS or (published and not all(s["published"] for s in shards)):
            return None
        return sum(int(s["processed"]) for s in shards)

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def restores(self) -> str:
        """The last restore of each shard, as the worker logged it (orderbank.engine.stream.agents)."""
        lines = (self.folder / f"{self.settings.app_id}.log").read_text(errors="replace").splitlines()
        return "; ".join(line.split("]")[-1].strip() for line in [x for x in lines if ": restored " in x][-PARTITIONS:])

    def kill(self) -> None:
        assert self.proc is not None
        stop_child(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_child(self.proc)


def wait_for(probe: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := probe()) is not None:
            return result
        time.sleep(0.05)
    raise TimeoutError(f"no {what} within {timeout:g}s")


class Lag:
    """Consumer lag of the ingest group (input topic) and of the Faust group (lanes topic)."""

    def __init__(self, settings: Settings) -> None:
        self.settings, topics = settings, Topics(settings)
        self.events = [TopicPartition(topics.events.name, p) for p in range(PARTITIONS)]
        self.lanes = [TopicPartition(topics.lanes.name, p) for p in range(settings.shard_partitions)]
        self.admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), client_id="bench-lag")
        self.ends = AIOKafkaConsumer(**settings.kafka_kwargs(), group_id=None)

    async def __aenter__(self) -> Lag:
        await self.admin.start()
        await self.ends.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ends.stop()
        await self.admin.close()

    async def now(self) -> tuple[int, int]:
        ends = await self.ends.end_offsets(self.events + self.lanes)
        ingest = await self.admin.list_consumer_group_offsets(f"{self.settings.app_id}-ingest")
        faust = await self.admin.list_consumer_group_offsets(self.settings.app_id)

        def behind(tps: list[TopicPartition], committed: dict[TopicPartition, Any]) -> int:
            return sum(ends[tp] - max(committed[tp].offset, 0) if tp in committed else ends[tp] for tp in tps)

        return behind(self.events, ingest), behind(self.lanes, faust)


def yu7_prefix(seed: int, events: int) -> list[tuple[bytes, bytes]]:
    """The first `events` events of the yu7 log as (key, value) records; generated before the clock starts."""
    return [(doc["order_id"].encode(), orjson.dumps(doc)) for doc in islice(generate(preset("yu7"), seed), events)]


async def produce(settings: Settings, records: list[tuple[bytes, bytes]], rate: float, sent: list[int]) -> None:
    """Send the records at `rate` events/s; `sent[0]` counts what was sent."""
    topic = Topics(settings).events.name
    producer = AIOKafkaProducer(**producer_config(settings, "bench-load"))
    await producer.start()
    try:
        started = time.monotonic()
        for number, (key, value) in enumerate(records, start=1):
            await producer.send(topic, value, key=key)
            sent[0] = number
            if number % 200 == 0 and (ahead := number / rate - (time.monotonic() - started)) > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()


async def sustained(settings: Settings, worker: WorkerProcess, records: list[tuple[bytes, bytes]],
                    rate: float) -> tuple[list[Sample], float, float]:
    """Samples taken every second under load and while draining; the load's and the drain's seconds."""
    sent, samples = [0], list[Sample]()
    async with Lag(settings) as lag:
        started = time.monotonic()
        feeding = asyncio.create_task(produce(settings, records, rate, sent))
        loaded_s = 0.0
        while True:
            await asyncio.sleep(1.0 - (time.monotonic() - started) % 1.0)
            input_lag, lanes_lag = await lag.now()
            processed = await asyncio.to_thread(worker.processed) or 0
            at = time.monotonic() - started
            samples.append(Sample(at, sent[0], processed, input_lag, lanes_lag, worker.rss_mib()))
            if feeding.done() and not loaded_s:
                await feeding  # raises the producer's error, if any
                loaded_s = at
                print(f"  load done: {sent[0]:,} events in {loaded_s:.0f}s; draining", flush=True)
            elif int(at) % 30 == 0:
                print(f"  {at:4.0f}s sent {sent[0]:>9,} processed {processed:>9,} input lag {input_lag:>7,} "
                      f"lanes lag {lanes_lag:>3} rss {samples[-1].rss_mib:6.0f} MiB", flush=True)
            if loaded_s and processed == sent[0] and input_lag == 0 and lanes_lag == 0:
                return samples, loaded_s, at - loaded_s


def recovery(worker: WorkerProcess, total: int) -> tuple[float, float]:
    """Kill the worker, start it again: seconds until its shards count every event, and until /snapshot answers."""
    worker.kill()
    started = time.monotonic()
    worker.start()
    wait_for(lambda: worker.processed() == total or None, 1800, "restored shards")
    restored = time.monotonic() - started
    wait_for(lambda: worker.get("/snapshot")[0] == 200 or None, 600, "/snapshot")
    return restored, time.monotonic() - started


def p99(values: list[int]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else float(values[0])


def report(samples: list[Sample], loaded_s: float, drain_s: float) -> None:
    load = [s for s in samples if s.at <= loaded_s]
    warm = next((s for s in load if s.at >= WARM_S), load[0])
    end = load[-1]
    total = samples[-1].produced
    print(f"\nsustained: {total:,} events in {loaded_s:.0f}s = {total / loaded_s:,.0f} events/s offered; "
          f"processed under load {end.processed / loaded_s:,.0f} events/s; drained {drain_s:.1f}s after the load")
    for name, values in (("input lag (events)", [s.input_lag for s in load]),
                         ("lanes lag (frames)", [s.lanes_lag for s in load])):
        print(f"  {name:20} max {max(values):>9,}  p99 {p99(values):>11,.0f}  mean {statistics.fmean(values):>11,.0f}")
    print(f"  worker RSS: {warm.rss_mib:.0f} MiB at {warm.at:.0f}s ({warm.processed:,} events), "
          f"{end.rss_mib:.0f} MiB at the end of the load ({end.processed:,} events), max "
          f"{max(s.rss_mib for s in samples):.0f} MiB; growth after warm-up "
          f"{(end.rss_mib - warm.rss_mib) / max(end.processed - warm.processed, 1) * 1e6:.0f} MiB per million events")
    print(f"  {'t (s)':>6} {'sent':>10} {'processed':>10} {'input lag':>10} {'lanes lag':>10} {'RSS MiB':>8}")
    for s in [*samples[::max(1, len(samples) // 12)], samples[-1]]:
        print(f"  {s.at:6.0f} {s.produced:10,} {s.processed:10,} {s.input_lag:10,} {s.lanes_lag:10,} {s.rss_mib:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=6000, help="events per second offered")
    parser.add_argument("--duration", type=float, default=180, help="longest load, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    args = parser.parse_args()
    stores = ["memory://"] + (["rocksdb://"] if importlib.util.find_spec("rocksdict") else [])
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        bootstrap = args.bootstrap or stack.enter_context(Broker(BrokerSettings(state_dir=tmp / "kafka"))).bootstrap
        name = f"load-{uuid.uuid4().hex[:8]}"
        settings = Settings(bootstrap_servers=bootstrap, app_id=name, topic_prefix=name, input_partitions=PARTITIONS)
        asyncio.run(ensure(settings))
        print(f"yu7 preset (seed {args.seed}) at {args.rate:,.0f} events/s for up to {args.duration:.0f}s into "
              f"{name}.events ({PARTITIONS} partitions), Apache Kafka at {bootstrap}")
        workers = {store: WorkerProcess(settings.model_copy(update={"store": store, "app_id": f"{name}-{store[:-3]}"}),
                                        tmp) for store in stores}
        for worker in workers.values():
            stack.callback(worker.stop)
        first = workers["memory://"].start()
        wait_for(first.processed, 120, "the worker's shards")
        wanted = int(args.rate * args.duration)
        records = yu7_prefix(args.seed, wanted)
        print(f"  {len(records):,} events: " + ("the whole log" if len(records) < wanted else "a prefix of the log"))
        samples, loaded_s, drain_s = asyncio.run(sustained(first.settings, first, records, args.rate))
        report(samples, loaded_s, drain_s)
        total = samples[-1].produced
        print("\nrecovery after SIGKILL (restart until /health counts every event; until /snapshot answers):")
        for store, worker in workers.items():
            if worker is not first:  # a fresh app of its own reads the whole input, then is killed
                started = time.monotonic()
                worker.start()
                wait_for(lambda w=worker: w.processed(published=True) == total or None, 1800, "the catch-up")
                print(f"  {store:12} caught up on {total:,} events in {time.monotonic() - started:.0f}s "
                      "(from its start)")
            restored, answered = recovery(worker, total)
            print(f"  {store:12} restored in {restored:.1f}s, /snapshot answered after {answered:.1f}s "
                  f"(RSS {worker.rss_mib():.0f} MiB); of which OrderBank restores: {worker.restores()}", flush=True)


if __name__ == "__main__":
    main()
