"""Launcher for a real single-node Apache Kafka broker (KRaft) for tests, benchmarks and dev.

Jars come from Maven Central via ``mvn`` (``broker.pom.xml``) into a cache dir and the broker
runs as a plain ``java`` child process: no Docker, no Kafka tarball, stdlib only. ``Broker`` is
the in-process API (tests, fault injection through ``kill``/``restart``);
``start_background``/``status``/``stop_background`` back the ``orderbank broker`` CLI, and
``running_local`` finds the broker that it or ``orderbank up`` runs, for every command that talks to Kafka.

With ``BrokerSettings(sasl_ssl=True)`` the broker also listens for SASL_SSL clients (SCRAM-SHA-512
over TLS, see docs/security.md): a throwaway CA and broker certificate made with the JDK's
``keytool`` are kept in ``<state>/tls``, and one SCRAM user is created when the storage is formatted.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
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

from orderbank.engine.cache import cache_dir
from orderbank.engine.dev.children import tied_to_this_process
from orderbank.engine.dev.ports import free_ports
from orderbank.projections.errors import OrderbankError

POM = Path(__file__).with_name("broker.pom.xml")
STARTED_LINE = b"Kafka Server started"  # logged only once the broker is registered and unfenced
SCRAM_USER = "orderbank"
# PKCS12 needs a store password; it guards nothing here, the throwaway key sits right next to it.
KEYSTORE_PASSWORD = "orderbank-test-only"


_PORT_RETRIES = 2
_IN_USE = "Address already in use"


class BrokerError(OrderbankError):
    """The broker could not be provisioned, started or stopped."""


@dataclass(frozen=True)
class BrokerSettings:
    cache_dir: Path = field(default_factory=cache_dir)
    kafka_version: str = "4.1.1"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    heap: str = "512m"
    state_dir: Path | None = None  # data, log, pid file; None = <cache_dir>/broker
    sasl_ssl: bool = False  # also listen for SASL_SSL (SCRAM-SHA-512) clients on a second free port
    # How long a new consumer group waits for more members before its first assignment. Tests take 0 (a
    # lone worker starts at once); a cluster's default is 3 s, which lets workers started together share
    # the partitions from the start instead of rebalancing them away from the first one.
    join_delay_ms: int = 0

    @property
    def state(self) -> Path:
        return self.state_dir or self.cache_dir / "broker"


@dataclass(frozen=True)
class SaslSslListener:
    """How a client reaches the SASL_SSL listener: address, CA to trust and the SCRAM user."""

    bootstrap: str
    cafile: Path
    username: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    state: Path | None = None  # the broker's state directory


UP_DIR = "up"
"""`orderbank up`'s files in the cache: its broker's state (under `broker/`, a fresh broker each run), its worker's."""


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = Path(home, "bin", "java") if home else None
    found = str(java) if java and java.exists() else shutil.which("java")
    if not found:
        raise BrokerError("java not found (need Java 17+ on PATH or in JAVA_HOME)")
    return found


def _run(cmd: list[str], what: str, timeout: float, secret: str | None = None) -> None:
    """Run a tool to completion; ``secret`` (a password in ``cmd``) is masked in the error."""
    shown = " ".join(cmd).replace(secret, "***") if secret else " ".join(cmd)
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BrokerError(f"{what} timed out after {timeout}s: {shown}") from None
    if r.returncode:
        tail = (r.stdout + r.stderr)[-3000:]
        raise BrokerError(f"{what} failed (exit {r.returncode}): {shown}\n{tail}")


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
        self.tls_dir, self.user_file = self.dir / "tls", self.dir / "scram-user.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted: int | None = None  # pid of a broker another process started
        self._ports: tuple[int, int] | None = None  # (client, controller), kept for restart()
        self._sasl_port: int | None = None
        self._sasl_ssl: SaslSslListener | None = None
        self._log_offset = 0  # where this run's part of the (appended) log starts
        atexit.register(self._reap)  # a crashed test run must not leak a 512 MB JVM

    @property
    def bootstrap(self) -> str:
        if self._ports is None:
            raise BrokerError("broker not started")
        return f"{self.settings.host}:{self._ports[0]}"

    @property
    def sasl_ssl(self) -> SaslSslListener:
        """The SASL_SSL listener (needs ``BrokerSettings(sasl_ssl=True)`` and a started broker)."""
        if self._sasl_ssl is None:
            raise BrokerError("no SASL_SSL listener: start a broker with BrokerSettings(sasl_ssl=True)")
        return self._sasl_ssl

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0, *, fresh: bool = True, detached: bool = False) -> str:
        """Start and wait until usable; ``fresh=False`` reuses formatted data and known ports.

        The broker stops (SIGTERM: a controlled shutdown) when this process dies, however it dies,
        unless ``detached``: then it outlives this process until ``stop_background``."""
        # A port found free can be bound by another process before the broker binds it; a fresh
        # broker on ports it picked itself picks again.
        retries = _PORT_RETRIES if fresh and not self.settings.port else 0
        for _ in range(retries):
            try:
                return self._start(timeout, fresh=fresh, detached=detached)
            except BrokerError as e:
                if _IN_USE not in str(e):
                    raise
        return self._start(timeout, fresh=fresh, detached=detached)

    def _start(self, timeout: float, *, fresh: bool, detached: bool) -> str:
        info = _read_info(self.info_file)
        if info and _alive(int(info["pid"])):
            raise BrokerError(f"a broker already runs from {self.dir} (pid {info['pid']})")
        lib, java, host = ensure_jars(self.settings), _java(), self.settings.host
        reuse = not fresh and (self.data_dir / "meta.properties").is_file()
        if reuse and self._ports is None and info:
            self._ports = (int(info["port"]), int(info["controller_port"]))
            self._sasl_port = info.get("sasl_ssl_port")
        if not reuse or self._ports is None:
            fixed = self.settings.port
            client, controller = free_ports(host, 2, taken={fixed})
            self._ports = (fixed or client, controller)
            self._sasl_port = None
        if self.settings.sasl_ssl and self._sasl_port is None:
            self._sasl_port = free_ports(host, 1, taken=self._ports)[0]
        if not reuse:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.user_file.unlink(missing_ok=True)  # its user lived in the data just wiped
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._sasl_ssl = self._sasl_ssl_listener(reuse) if self.settings.sasl_ssl else None
        props, log_cfg = self.dir / "server.properties", self.dir / "log4j2.properties"
        props.write_text(_server_properties(host, *self._ports, self.data_dir, self._sasl_ssl,
                                            self.tls_dir / "broker.p12", self.settings.join_delay_ms))
        log_cfg.write_text(_LOG4J2)
        jvm = [java, f"-Xmx{self.settings.heap}", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log_cfg}", "-cp", str(lib / "*")]
        if not reuse:
            user = self._sasl_ssl
            scram = ["--add-scram", f"{user.mechanism}=[name={user.username},password={user.password}]"] if user else []
            _run([*jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props), *scram],
                 "kafka storage format", timeout=120, secret=user.password if user else None)
        self._log_offset = self.log_file.stat().st_size if reuse and self.log_file.exists() else 0
        with self.log_file.open("ab" if reuse else "wb") as out:  # keep crash history
            self._proc = subprocess.Popen([*jvm, "kafka.Kafka", str(props)], cwd=self.dir,
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          preexec_fn=None if detached else tied_to_this_process(signal.SIGTERM))
        self.info_file.write_text(json.dumps({
            "pid": self._proc.pid, "bootstrap": self.bootstrap, "port": self._ports[0],
            "controller_port": self._ports[1], "sasl_ssl_port": self._sasl_port if self._sasl_ssl else None,
            "log": str(self.log_file)}))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self.bootstrap

    def _sasl_ssl_listener(self, reuse: bool) -> SaslSslListener:
        """TLS material (made once per state dir) and the SCRAM user (new with each format)."""
        host = self.settings.host
        _ensure_tls(self.tls_dir, host)
        user = _read_info(self.user_file)
        if user is None:
            if reuse:
                raise BrokerError(f"{self.data_dir} was formatted without the SASL_SSL user; "
                                  "start with fresh=True")
            user = {"username": SCRAM_USER, "password": secrets.token_hex(16)}
            self.user_file.touch(mode=0o600)
            self.user_file.write_text(json.dumps(user))
        return SaslSslListener(f"{host}:{self._sasl_port}", self.tls_dir / "ca.pem",
                               str(user["username"]), str(user["password"]))

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (rc := self._proc.poll()) is not None:
                raise BrokerError(f"broker exited with {rc} while starting (its log: {self.log_file}):\n"
                                  f"{self.log_tail()}")
            # The port opens before the broker has registered with its controller.
            if _port_open(self.settings.host, int(self.bootstrap.rsplit(":", 1)[1])):
                with self.log_file.open("rb") as f:
                    f.seek(self._log_offset)
                    if STARTED_LINE in f.read():
                        return
            time.sleep(0.2)
        raise BrokerError(f"broker not ready after {timeout}s (its log: {self.log_file}):\n{self.log_tail()}")

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


def _ensure_tls(tls: Path, host: str) -> None:
    """A throwaway CA (``ca.pem``) and a broker keystore it signed (``broker.p12``) valid for ``host``.

    Made with the JDK's keytool, which every broker machine has; kept until the host changes. The CA's
    key is deleted once it has signed: nothing else is ever signed with it.
    """
    try:
        ipaddress.ip_address(host)
        named = f"ip:{host}"
    except ValueError:
        named = f"dns:{host}"
    san = ",".join(dict.fromkeys(["dns:localhost", "ip:127.0.0.1", named]))
    stamp = tls / "san.txt"
    if stamp.is_file() and stamp.read_text() == san:
        return
    keytool = Path(_java()).resolve().with_name("keytool")
    work = tls.with_name(tls.name + ".tmp")  # renamed into place whole: an interrupted run leaves no half set
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    def run(*args: str) -> None:
        _run([str(keytool), *args, "-storepass", KEYSTORE_PASSWORD], f"keytool {args[0]}", timeout=60)

    new_key = ("-genkeypair", "-storetype", "PKCS12", "-keyalg", "EC", "-groupname", "secp256r1",
               "-validity", "3650")
    ca, broker = ("-keystore", str(work / "ca.p12"), "-alias", "ca"), ("-keystore", str(work / "broker.p12"))
    run(*new_key, *ca, "-dname", "CN=orderbank throwaway test CA", "-ext", "bc:c")
    run("-exportcert", "-rfc", *ca, "-file", str(work / "ca.pem"))
    run(*new_key, *broker, "-alias", "broker", "-dname", "CN=orderbank test broker")
    run("-certreq", *broker, "-alias", "broker", "-file", str(work / "broker.csr"))
    run("-gencert", "-rfc", *ca, "-infile", str(work / "broker.csr"), "-outfile", str(work / "broker.pem"),
        "-ext", f"SAN={san}", "-ext", "EKU=serverAuth", "-validity", "3650")
    # The signed certificate replaces the self-signed one once the keystore trusts its CA.
    run("-importcert", "-noprompt", *broker, "-alias", "ca", "-file", str(work / "ca.pem"))
    run("-importcert", "-noprompt", *broker, "-alias", "broker", "-file", str(work / "broker.pem"))
    for scratch in ("ca.p12", "broker.csr", "broker.pem"):  # the CA key is not needed again: drop it
        (work / scratch).unlink()
    (work / stamp.name).write_text(san)
    shutil.rmtree(tls, ignore_errors=True)
    work.rename(tls)


def _server_properties(host: str, port: int, cport: int, data: Path,
                       sasl_ssl: SaslSslListener | None, keystore: Path, join_delay_ms: int) -> str:
    client = f"PLAINTEXT://{host}:{port}" + (f",SASL_SSL://{sasl_ssl.bootstrap}" if sasl_ssl else "")
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{cport}
listeners={client},CONTROLLER://{host}:{cport}
advertised.listeners={client}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs={data}
num.partitions=1
# Topics are created by the engine with their partitions and configs, never by a client that reads one
# (a `watch` before any worker once created a projection topic of one partition, and broke the worker).
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms={join_delay_ms}
# One node: fewer internal partitions make the first group join / transaction quicker.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
# After a SIGKILL the controller refuses the new incarnation until the old session
# expires (default 9 s); a shorter session makes crash-restart take ~3 s, not ~12 s.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
""" + (_sasl_ssl_properties(sasl_ssl.mechanism, keystore) if sasl_ssl else "")


def _sasl_ssl_properties(mechanism: str, keystore: Path) -> str:
    # Controller and inter-broker traffic stay on PLAINTEXT: one local node, nothing to protect.
    prefix = "listener.name.sasl_ssl"
    return f"""sasl.enabled.mechanisms={mechanism}
{prefix}.{mechanism.lower()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
{prefix}.ssl.keystore.type=PKCS12
{prefix}.ssl.keystore.location={keystore}
{prefix}.ssl.keystore.password={KEYSTORE_PASSWORD}
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
    bootstrap = b.start(timeout, fresh=False, detached=True)
    b._proc = None  # forget the child so atexit leaves the JVM running
    return bootstrap


def status(settings: BrokerSettings | None = None) -> BrokerStatus:
    s = settings or BrokerSettings()
    info = _read_info(s.state / "broker.json")
    if not info:
        return BrokerStatus(False, None, None, s.state)
    pid, port = int(info["pid"]), int(info["port"])
    return BrokerStatus(_alive(pid) and _port_open(s.host, port), pid, str(info["bootstrap"]), s.state)


def local_brokers(cache: Path | None = None) -> tuple[BrokerSettings, BrokerSettings]:
    """The two local brokers: the one `orderbank broker start` runs (`<cache>/broker`), then `orderbank up`'s."""
    root = cache_dir() if cache is None else cache
    return BrokerSettings(cache_dir=root), BrokerSettings(cache_dir=root, state_dir=root / UP_DIR / "broker")


def running_local(cache: Path | None = None) -> BrokerStatus | None:
    """The local broker that runs, `orderbank broker start`'s first; None if neither does."""
    return next((found for found in map(status, local_brokers(cache)) if found.running), None)


def stop_background(settings: BrokerSettings | None = None, timeout: float = 20.0) -> bool:
    """Stop the broker recorded in ``<state_dir>/broker.json``; False if none was running."""
    b, pid = Broker(settings), status(settings).pid
    was_running = pid is not None and _alive(pid)
    b._adopted = pid
    b.stop(timeout)
    return was_running
