"""Workers for the streaming tests: `orderbank worker` child processes, waiting for them, killing them.

Workers run as child processes (`faust -A orderbank.engine.stream.app worker`) so a test can stop
or kill them like an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from orderbank.engine.dev.children import stop_child, tied_to_this_process
from orderbank.engine.dev.ports import free_port
from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.app import APP
from tests.support.topics import secrets_env

T = TypeVar("T")


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

    def snapshot(self) -> bytes:
        """Its `/snapshot`: the whole bank as canonical JSON (it must answer 200)."""
        status, body = self.get("/snapshot")
        assert status == 200, (status, body[:500])
        return body

    def health(self) -> dict[str, Any] | None:
        """Its /health, ok (200) or degraded (503); None while it does not answer."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            status, body = self.get("/health")
        except OSError:
            return None
        return orjson.loads(body) if status in (200, 503) else None

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


