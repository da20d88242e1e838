"""Launcher for a real single-node Apache Kafka broker (KRaft) for tests, benchmarks and dev.

Jars come from Maven Central via ``mvn`` (``broker.pom.xml``) into a cache dir and the broker
runs as a plain ``java`` child process: no Docker, no Kafka tarball, stdlib only. ``Broker`` is
the in-process API (tests, fault injection through ``kill``/``restart``);
``start_background``/``status``/``stop_background`` back the ``orderbank broker`` CLI.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[1]
POM = Path(__file__).with_name("broker.pom.xml")
STARTED_LINE = b"Kafka Server started"  # logged only once the broker is registered and unfenced


class BrokerError(Exception):
    """The broker could not be provisioned, started or stopped."""


def _default_cache() -> Path:
    return Path(os.environ.get("ORDERBANK_CACHE") or REPO_ROOT / ".cache")


@dataclass(frozen=True)
class BrokerSettings:
    cache_dir: Path = field(default_factory=_default_cache)
    kafka_version: str = "4.1.1"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    heap: str = "512m"
    state_dir: Path | None = None  # data, log, pid file; None = <cache_dir>/broker

    @property
    def state(self) -> Path:
        return self.state_dir or self.cache_dir / "broker"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = Path(home, "bin", "java") if home else None
    found = str(java) if java and java.exists() else shutil.which("java")
    if not found:
        raise BrokerError("java not found (need Java 17+ on PATH or in JAVA_HOME)")
    return found


def _run(cmd: list[str], what: str, timeout: float) -> None:
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BrokerError(f"{what} timed out after {timeout}s: {' '.join(cmd)}") from e
    if r.returncode:
        tail = (r.stdout + r.stderr)[-3000:]
        raise BrokerError(f"{what} failed (exit {r.returncode}): {' '.join(cmd)}\n{tail}")


def ensure_jars(settings: BrokerSettings | None = None) -> Path:
    """Resolve the broker jars into ``<cache>/kafka-<version>/lib`` once; return that dir."""
    s = settings or BrokerSettings()
    home = s.cache_dir / f"kafka-{s.kafka_version}"
    lib, marker = home / "lib", home / "jars.ok"
    # The stamp covers the pom, so editing it (e.g. another binding) re-resolves.
    stamp = hashlib.sha256(POM.read_bytes() + s.kafka_version.encode()).hexdigest()
    if marker.is_file() and marker.read_text() == stamp:
        return lib
    _java()
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("mvn not found on PATH (needed once to fetch the Kafka jars)")
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:  # parallel test workers resolve only once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == stamp:
            return lib
        shutil.rmtree(lib, ignore_errors=True)  # jars of another version would clash
        _run([mvn, "-B", "-q", "-ntp", "-Dstyle.color=never", "-f", str(POM),
              "dependency:copy-dependencies", f"-DoutputDirectory={lib}",
              f"-Dkafka.version={s.kafka_version}"], "mvn", timeout=1200)
        if not any(lib.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"mvn succeeded but put no kafka_2.13 jar in {lib}")
        marker.write_text(stamp)
    return lib


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if not Path("/proc/self").exists():  # no procfs: trust kill(0)
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:  # cmdline is empty for a zombie and differs for a recycled pid
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cluster_id() -> str:
    while True:  # as Kafka's Uuid.randomUuid: a leading '-' would parse as a CLI flag
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class Broker:
    """One KRaft broker+controller process whose files all live in ``settings.state``."""

    def __init__(self, settings: BrokerSettings | None = None) -> None:
        self.settings = settings or BrokerSettings()
        self.dir = self.settings.state
        self.data_dir, self.log_file = self.dir / "data", self.dir / "broker.log"
        self.info_file = self.dir / "broker.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted: int | None = None  # pid of a broker another process started
        self._ports: tuple[int, int] | None = None  # (client, controller), kept for restart()
        self._log_offset = 0  # where this run's part of the (appended) log starts
        atexit.register(self._reap)  # a crashed test run must not leak a 512 MB JVM

    @property
    def bootstrap(self) -> str:
        if self._ports is None:
            raise BrokerError("broker not started")
        return f"{self.settings.host}:{self._ports[0]}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0, *, fresh: bool = True) -> str:
        """Start and wait until usable; ``fresh=False`` reuses formatted data and known ports."""
        info = _read_info(self.info_file)
        if info and _alive(int(info["pid"])):
            raise BrokerError(f"a broker already runs from {self.dir} (pid {info['pid']})")
        lib, java, host = ensure_jars(self.settings), _java(), self.settings.host
        reuse = not fresh and (self.data_dir / "meta.properties").is_file()
        if reuse and self._ports is None and info:
            self._ports = (int(info["port"]), int(info["controller_port"]))
        if not reuse or self._ports is None:
            self._ports = (self.settings.port or _free_port(host), _free_port(host))
        if not reuse:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props, log_cfg = self.dir / "server.properties", self.dir / "log4j2.properties"
        props.write_text(_server_properties(host, *self._ports, self.data_dir))
        log_cfg.write_text(_LOG4J2)
        jvm = [java, f"-Xmx{self.settings.heap}", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log_cfg}", "-cp", str(lib / "*")]
        if not reuse:
            _run([*jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                  "-c", str(props)], "kafka storage format", timeout=120)
        self._log_offset = self.log_file.stat().st_size if reuse and self.log_file.exists() else 0
        with self.log_file.open("ab" if reuse else "wb") as out:  # keep crash history
            self._proc = subprocess.Popen([*jvm, "kafka.Kafka", str(props)], cwd=self.dir,
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.info_file.write_text(json.dumps({
            "pid": self._proc.pid, "bootstrap": self.bootstrap, "port": self._ports[0],
            "controller_port": self._ports[1], "log": str(self.log_file)}))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self.bootstrap

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (rc := self._proc.poll()) is not None:
                raise BrokerError(f"broker exited with {rc} while starting:\n{self.log_tail()}")
            # The port opens before the broker has registered with its controller.
            if _port_open(self.settings.host, int(self.bootstrap.rsplit(":", 1)[1])):
                with self.log_file.open("rb") as f:
                    f.seek(self._log_offset)
                    if STARTED_LINE in f.read():
                        return
            time.sleep(0.2)
        raise BrokerError(f"broker not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """This run's log: ERROR lines first (the cause), then the last ``lines`` lines."""
        try:
            with self.log_file.open("rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "<no broker log>"
        errors = [ln for ln in text if " ERROR " in ln or "Exception:" in ln][:8]
        return "\n".join([*errors, "...", *text[-lines:]])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (controlled shutdown), SIGKILL after ``timeout``; no-op if not running."""
        self._terminate(((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)))

    def kill(self) -> None:
        """SIGKILL only: a crash without controlled shutdown, as fault tests need."""
        self._terminate(((signal.SIGKILL, 10.0),))

    def restart(self, timeout: float = 60.0) -> str:
        """Stop if running, then start on the same data dir and ports."""
        self.stop()
        return self.start(timeout, fresh=False)

    def _terminate(self, steps: tuple[tuple[signal.Signals, float], ...]) -> None:
        # Only our own child or an explicitly adopted pid: never a stranger from broker.json.
        (proc, self._proc), (adopted, self._adopted) = (self._proc, None), (self._adopted, None)
        pid = proc.pid if proc else adopted
        if pid is None or (proc is None and not _alive(pid)):
            return
        for sig, wait in steps:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)  # start_new_session=True made the JVM a group leader
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if (proc.poll() is not None) if proc else not _alive(pid):
                    return
                time.sleep(0.05)
        raise BrokerError(f"broker pid {pid} survived SIGKILL")

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.kill()

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _server_properties(host: str, port: int, cport: int, data: Path) -> str:
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{cport}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# One node: fewer internal partitions make the first group join / transaction quicker.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
# After a SIGKILL the controller refuses the new incarnation until the old session
# expires (default 9 s); a shorter session makes crash-restart take ~3 s, not ~12 s.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
"""


# No log4j shutdown hook: otherwise logging stops before Kafka's own shutdown finishes.
_LOG4J2 = """shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
"""


def start_background(settings: BrokerSettings | None = None, timeout: float = 60.0) -> str:
    """Start a detached broker that outlives this process, keeping a previous run's data."""
    b = Broker(settings)
    bootstrap = b.start(timeout, fresh=False)
    b._proc = None  # forget the child so atexit leaves the JVM running
    return bootstrap


def status(settings: BrokerSettings | None = None) -> BrokerStatus:
    s = settings or BrokerSettings()
    info = _read_info(s.state / "broker.json")
    if not info:
        return BrokerStatus(False, None, None)
    pid, port = int(info["pid"]), int(info["port"])
    return BrokerStatus(_alive(pid) and _port_open(s.host, port), pid, str(info["bootstrap"]))


def stop_background(settings: BrokerSettings | None = None, timeout: float = 20.0) -> bool:
    """Stop the broker recorded in ``<state_dir>/broker.json``; False if none was running."""
    b, pid = Broker(settings), status(settings).pid
    was_running = pid is not None and _alive(pid)
    b._adopted = pid
    b.stop(timeout)
    return was_running
