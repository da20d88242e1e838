"""Helpers for the streaming tests: worker processes, producing, reading topics back, the fold to compare.

Each test gets its own topic prefix and app id, so tests share one broker (tests/conftest.py)
without seeing each other's data. Workers run as child processes (`orderbank worker`) so a test
can stop or kill them like an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orderbank.engine.dev.children import stop_child, tied_to_this_process
from orderbank.engine.kafka.topics import Topics, ensure, partitions_of
from orderbank.engine.settings import Settings
from orderbank.engine.stream.app import APP
from orderbank.engine.stream.shards import saved_of, saved_plan_of
from orderbank.projections.bank import BankSettings, OrderBank
from orderbank.projections.bank import fold_lines as bank_fold_lines
from orderbank.projections.codec import Rejection, decode
from orderbank.projections.pool import totals

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVICE_TOKEN = "test-service-token-0123456789"
LOOKUP_KEY = "test-lookup-key-0123456789"


def unique_settings(bootstrap: str, **overrides: Any) -> Settings:
    name = f"t{uuid.uuid4().hex[:10]}"
    return Settings(bootstrap_servers=bootstrap, app_id=name, topic_prefix=name, session_timeout_s=6.0,
                    publish_interval_s=0.5, idle_after_s=0.3, web_service_token=SERVICE_TOKEN,
                    web_lookup_key=LOOKUP_KEY, **overrides)


def secrets_env(settings: Settings) -> dict[str, str]:
    """The web credentials of `settings` as ORDERBANK_* variables (settings' dumps leave them out)."""
    pairs = (("WEB_SERVICE_TOKEN", settings.web_service_token), ("WEB_LOOKUP_KEY", settings.web_lookup_key))
    return {f"ORDERBANK_{name}": value.get_secret_value() for name, value in pairs if value is not None}


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for(workers: Iterable[Worker], probe: Callable[[], T | None], timeout: float, what: str,
             every: float = 0.1) -> T:
    """wait_until, saying on a timeout where the workers stuck: each one's health and log tail."""
    try:
        return wait_until(probe, timeout, what, every)
    except AssertionError as exc:
        raise AssertionError("\n".join([str(exc), *(w.describe() for w in workers)])) from None


@dataclass
class Worker:
    """One worker child process (`faust -A orderbank.engine.stream.app worker`) with its own web port and state dir."""

    settings: Settings
    state: Path
    name: str = "w1"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    preload: str | None = None  # a module imported before Faust starts (fault injection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        env = {**os.environ, **{f"ORDERBANK_{k.upper()}": str(v) for k, v in self.settings.model_dump().items()
                                if v is not None and k not in ("worker_id", "web_port", "data_dir")},
               "ORDERBANK_WORKER_ID": self.name, "ORDERBANK_WEB_PORT": str(self.port),
               "ORDERBANK_DATA_DIR": str(self.state / self.name), **secrets_env(self.settings)}
        log = (self.state / f"{self.name}.log").open("ab")
        # The way the docs say Faust users run it; settings come from the ORDERBANK_* environment.
        faust = (["-c", f"import {self.preload}; from faust.cli.faust import cli; cli()"] if self.preload
                 else ["-m", "faust"])
        self.proc = subprocess.Popen([sys.executable, *faust, "-A", APP, "worker", "-l", "info"],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True,  # killed with the tests, however they end
                                     preexec_fn=tied_to_this_process(signal.SIGKILL))
        log.close()
        wait_until(self.health, 90, f"worker {self.name} to serve /health")
        return self

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """GET as the service (the settings' token) unless other headers are given."""
        token = self.settings.web_service_token
        if headers is None:
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers),
                                        timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> dict[str, Any] | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            status, body = self.get("/health")
        except OSError:
            return None
        return orjson.loads(body) if status == 200 else None

    def describe(self) -> str:
        """Its health (or how it exited) and log tail, to say where a test stuck."""
        try:
            health: Any = self.health()
        except AssertionError as exc:  # it exited; the message has the log tail
            return f"--- {self.name}: {exc}"
        return f"--- {self.name}: {health}\n{self.log_tail()}"

    def log_tail(self, lines: int = 40) -> str:
        text = (self.state / f"{self.name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_child(self.proc, sig, grace=60)
        self.proc = None


def processed(workers: Iterable[Worker]) -> int:
    return sum(s["processed"] for w in workers for s in (w.health() or {"shards": {}})["shards"].values())


async def _offsets(settings: Settings) -> tuple[bool, dict[int, int]]:
    """(has the ingest group committed the whole input topic?, last offset of each lanes partition)."""
    topics = Topics(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.servers(), group_id=f"{settings.app_id}-ingest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        events = [TopicPartition(topics.events.name, p) for p in range(topics.events.partitions)]
        lanes = [TopicPartition(topics.lanes.name, p) for p in range(topics.lanes.partitions)]
        ends = await consumer.end_offsets(events + lanes)
        committed = [await consumer.committed(tp) or 0 for tp in events]
        forwarded = committed == [ends[tp] for tp in events]
        return forwarded, {tp.partition: ends[tp] - 1 for tp in lanes}
    finally:
        await consumer.stop()


def caught_up(workers: list[Worker], timeout: float = 120) -> None:
    """Wait until all input is forwarded, every frame applied by its shard's owner, and all published."""
    settings = workers[0].settings

    def done() -> bool:
        healths = [h for h in (w.health() for w in workers) if h]
        shards = {int(p): s for h in healths for p, s in h["shards"].items()}
        if len(shards) != settings.shard_partitions or not all(s["published"] for s in shards.values()):
            return False
        forwarded, last = asyncio.run(_offsets(settings))
        return forwarded and all(shards[p]["offset"] == offset for p, offset in last.items())

    wait_for(workers, done, timeout, "the workers to catch up and publish", every=0.3)


async def _produce(settings: Settings, values: Iterable[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Send raw records (no validation) to the input topic; returns their (partition, offset)."""
    topic = Topics(settings).events
    await ensure(settings, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=settings.servers(), enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic.name, value, key=key) for key, value in values]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


def produce_raw(settings: Settings, values: Iterable[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    return asyncio.run(_produce(settings, values))


def keyed(lines: Iterable[bytes]) -> list[tuple[bytes | None, bytes]]:
    """Records keyed by order_id, as producers must write them."""
    return [(orjson.loads(line)["order_id"].encode(), line) for line in lines]


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def _read(settings: Settings, topic: str) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.servers(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(await partitions_of(settings, topic))]
        assert tps, f"topic {topic} does not exist"
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        out: list[Record] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                out += [Record(tp.partition, r.offset, r.key, r.value, dict(r.headers)) for r in records
                        if r.offset < ends[tp]]
        return out
    finally:
        await consumer.stop()


def read_topic(settings: Settings, topic: str) -> list[Record]:
    return asyncio.run(_read(settings, topic))


def latest(records: Iterable[Record]) -> dict[bytes, bytes]:
    """What a compacted topic means: the latest value per key, tombstoned keys removed."""
    out: dict[bytes, bytes] = {}
    for record in records:
        assert record.key is not None
        if record.value is None:
            out.pop(record.key, None)
        else:
            out[record.key] = record.value
    return out


def published(settings: Settings) -> dict[str, Any]:
    """The bank as the projection topics hold it, assembled into the shape of OrderBank.snapshot().

    Valid when one shard holds every lane (one clock); cancellations are read from that shard.
    """
    prefix = settings.topic_prefix
    queue = {tuple(orjson.loads(k)): orjson.loads(v)
             for k, v in latest(read_topic(settings, f"{prefix}.queue")).items()}
    lanes, policy, window, as_of = {}, None, None, None
    for key, header in queue.items():
        if key[0] != "lane":
            continue
        positions: dict[str, Any] = {}
        for page in range(header["pages"]):
            positions.update(queue[("page", key[1], page)]["positions"])
        lanes[key[1]] = {"lane": key[1], "open": header["open"], "throughput_per_day": header["throughput_per_day"],
                         "eta_basis": header["eta_basis"], "eta_as_of": header["eta_as_of"],
                         "eta_note": header["eta_note"], "positions": positions}
        policy, window, as_of = header["policy"], header["window_days"], header["as_of"]
    rows = sorted((orjson.loads(v) for v in latest(read_topic(settings, f"{prefix}.pool")).values()),
                  key=lambda r: (r["lane"], r["trim"], r["cohort"], r["currency"]))
    rates = {tuple(orjson.loads(k)): orjson.loads(v)
             for k, v in latest(read_topic(settings, f"{prefix}.cancellations")).items()}
    shards = {key[0] for key in rates}
    assert len(shards) == 1, f"cancellations come from shards {shards}: not one clock"
    windows = sorted((v for k, v in rates.items() if k[1] == "window"), key=lambda w: (w["window_days"], w["trim"]))
    cohorts = sorted((v for k, v in rates.items() if k[1] == "cohort"), key=lambda c: (c["cohort"], c["trim"]))
    overall = next(v for k, v in rates.items() if k[1] == "overall")
    return {"as_of": as_of, "queue": {"policy": policy, "window_days": window, "lanes": lanes},
            "pool": {"buckets": rows, "totals": totals(rows)},
            "cancellations": {"windows": windows, "cohorts": cohorts, "overall": overall}}


def fold_lines(lines: Iterable[bytes], settings: BankSettings | None = None) -> OrderBank:
    """The in-process fold of a log, rejected lines skipped, as the CLI's fold does."""
    bank, _ = bank_fold_lines(lines, settings)
    return bank


def killed(worker: Worker) -> None:
    """SIGKILL the worker's process alone, as a crash or the OOM killer would: no revocation, no flush,
    no commit. Its ingest process (orderbank.engine.stream.ingest_process) must die with it."""
    assert worker.proc is not None
    pid = worker.proc.pid
    os.kill(pid, signal.SIGKILL)
    worker.proc.wait(30)
    worker.proc = None
    wait_until(lambda: not live_in_group(pid), 10, f"the processes of worker {worker.name} to die with it")


def live_in_group(pgid: int) -> list[int]:
    """The processes of a process group that are alive (not zombies waiting to be reaped)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                live.append(int(stat.parent.name))
    return live


@dataclass(frozen=True)
class Conservation:
    """What became of every input offset, and the workers' own counters."""

    events: int  # input records, all partitions
    applied: int  # distinct input offsets whose event is in the bank (changelog event ids)
    rejected: int  # distinct input offsets dead-lettered
    dead_letters: int  # dead-letter records, repeats of a redelivered bad event included
    counted_applied: int  # the shards' counters
    counted_duplicates: int
    counted_rejected: int


def _by_partition(records: Iterable[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for record in records:
        out.setdefault(record.partition, []).append(record)
    return out


def conserved(settings: Settings, workers: Iterable[Worker]) -> Conservation:
    """Check, per input topic partition, that every offset was applied exactly once or dead-lettered.

    The verdict each input record deserves comes from folding the input topic itself (an order's
    events share a partition, so its partition order is its log order). The worker's verdicts are
    read from Kafka: the applied event ids of every order and plan stream in the bank changelog, and the source
    coordinates in the dead-letter headers. A bad event redelivered after a crash may be
    dead-lettered twice: coordinates are compared as sets, repeats only counted.
    """
    topics = Topics(settings)
    inputs = _by_partition(read_topic(settings, topics.events.name))
    bank, at = OrderBank(settings.bank), dict[int, tuple[int, int]]()
    want: dict[str, set[tuple[int, int]]] = {"applied": set(), "rejected": set(), "duplicate": set()}
    for partition, records in sorted(inputs.items()):
        assert [r.offset for r in records] == list(range(len(records))), f"input partition {partition} has gaps"
        for r in records:
            event = decode(r.value or b"")
            if isinstance(event, Rejection) or r.key != event.order_id.encode():
                want["rejected"].add((partition, r.offset))
                continue
            at.setdefault(event.event_id.int, (partition, r.offset))
            outcome = bank.apply(event)
            verdict = "rejected" if isinstance(outcome, Rejection) else outcome.value
            want[verdict].add((partition, r.offset))

    changelog = latest(read_topic(settings, topics.changelog.name)).items()
    applied_ids = [*(i for key, value in changelog if key.startswith(b"o:") for i in saved_of(value).event_ids()),
                   *(i for key, value in changelog if key.startswith(b"p:") for i in saved_plan_of(value).event_ids())]
    assert len(applied_ids) == len(set(applied_ids)), "an event is applied twice in the bank"
    applied = {at[i] for i in applied_ids}
    letters = read_topic(settings, topics.deadletter.name)
    assert {r.headers["orderbank.source.topic"] for r in letters} <= {topics.events.name.encode()}
    rejected = {(int(r.headers["orderbank.source.partition"]), int(r.headers["orderbank.source.offset"]))
                for r in letters}
    for partition, records in sorted(inputs.items()):
        def mine(coordinates: set[tuple[int, int]], p: int = partition) -> set[int]:
            return {offset for q, offset in coordinates if q == p}

        differences = []
        for what, got in (("applied", applied), ("rejected", rejected)):
            lost, extra = sorted(mine(want[what]) - mine(got)), sorted(mine(got) - mine(want[what]))
            if lost or extra:
                differences.append(f"{what}: {len(lost)} missing {lost[:5]}, {len(extra)} extra {extra[:5]}")
        reasons = Counter(r.headers["orderbank.reason"].decode() for r in letters)
        assert not differences, f"partition {partition} differs from the fold: {differences}; dead letters {reasons}"
        assert not mine(applied) & mine(rejected)
        assert mine(applied) | mine(rejected) | mine(want["duplicate"]) == set(range(len(records))), (
            f"partition {partition}: input offsets neither applied nor dead-lettered")

    shards = [s for w in workers for s in (w.health() or {"shards": {}})["shards"].values()]
    assert len(shards) == settings.shard_partitions
    counted = Conservation(
        events=sum(len(r) for r in inputs.values()), applied=len(applied), rejected=len(rejected),
        dead_letters=len(letters), counted_applied=sum(s["applied"] for s in shards),
        counted_duplicates=sum(s["duplicates"] for s in shards),
        counted_rejected=sum(sum(s["rejected"].values()) for s in shards))
    assert counted.counted_applied == counted.applied == bank.applied
    # Redelivered bad events are rejected (and dead-lettered) again; the counters see every delivery.
    assert counted.counted_rejected >= counted.rejected and counted.dead_letters >= counted.rejected
    assert sum(s["processed"] for s in shards) == (
        counted.counted_applied + counted.counted_duplicates + counted.counted_rejected) >= counted.events
    return counted
