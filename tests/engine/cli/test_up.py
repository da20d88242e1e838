"""`orderbank up`: a broker, a worker and a producer of a synthetic launch in one command; Ctrl-C
stops them all cleanly. The worker's snapshot once the launch is in must be the fold of that launch.
SIGTERM stops it as cleanly, and killed outright it leaves no worker or broker behind. With a local broker
running (`orderbank broker start`'s), `up` uses it and leaves it running, and `produce` and `watch` find it too:
one broker, found the same way by every command."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

from orderbank.engine.cli.up import python_cli
from orderbank.engine.dev.broker import Broker, local_brokers, status
from orderbank.engine.dev.ports import free_port
from orderbank.engine.settings import Settings
from orderbank.replay.synth import generate, preset
from tests.support.equality import the_fold
from tests.support.topics import SERVICE_TOKEN
from tests.support.workers import wait_until

pytestmark = pytest.mark.broker
ORDERS = 1_500
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
"""A time as `watch` prints it for people: to the second."""


def snapshot(port: int) -> bytes | None:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/snapshot",
                                         headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return bytes(response.read())
    except (OSError, urllib.error.HTTPError):
        return None


def environment(cache: Path, **more: str) -> dict[str, str]:
    """The commands' environment: the per-user cache `cache`, the views' token, no bootstrap servers named."""
    env = {k: v for k, v in os.environ.items() if k != "ORDERBANK_BOOTSTRAP_SERVERS"}
    return {**env, "ORDERBANK_CACHE": str(cache), "ORDERBANK_WEB_SERVICE_TOKEN": SERVICE_TOKEN, **more}


def start_up(port: int, env: dict[str, str], orders: int = ORDERS) -> subprocess.Popen[bytes]:
    # As from a terminal: a shell that runs the tests in the background makes its children ignore
    # SIGINT, and a program that inherits that ignore keeps it (Python does).
    return subprocess.Popen(python_cli("up", "--orders", str(orders), "--rate", "5000", "--web-port", str(port)),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def orderbank(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(python_cli(*args), env=env, capture_output=True, text=True, timeout=120)


def ups_broker_runs(cache: Path) -> bool:
    return status(local_brokers(cache)[1]).running


def stop(up: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT) -> str:
    """Send `sig` (SIGINT is what Ctrl-C sends) and wait for `up` to end; what it printed."""
    try:
        up.send_signal(sig)
        return up.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_up_runs_the_pipeline_until_ctrl_c_and_then_stops_everything(fresh_cache: Path) -> None:
    port = free_port()
    lines = [orjson.dumps(doc) for doc in generate(preset("small", ORDERS), 1)]
    expected = the_fold(lines, Settings().bank)
    up = start_up(port, environment(fresh_cache))
    try:
        wait_until(lambda: snapshot(port) == expected or up.poll() is not None, 240,
                   "the worker of `orderbank up` to fold the whole launch", every=1.0)
        assert up.poll() is None, up.communicate()[0].decode(errors="replace")[-2000:]
        assert ups_broker_runs(fresh_cache)
    finally:
        output = stop(up)
    assert up.returncode == 0, output[-2000:]
    assert "stopped: producer, worker and broker" in output
    assert snapshot(port) is None and not ups_broker_runs(fresh_cache)  # the worker and the broker are gone


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_up_stopped_by_sigterm_or_killed_leaves_no_worker_or_broker(fresh_cache: Path, sig: signal.Signals) -> None:
    port = free_port()
    up = start_up(port, environment(fresh_cache))
    try:
        wait_until(lambda: snapshot(port) is not None or up.poll() is not None, 240,
                   "the worker of `orderbank up` to serve its views", every=0.5)
        assert up.poll() is None, up.communicate()[0].decode(errors="replace")[-2000:]
        assert ups_broker_runs(fresh_cache)
    finally:
        output = stop(up, sig)
    # Killed, `up` cleans nothing: the worker and the broker go because their parent went.
    wait_until(lambda: snapshot(port) is None and not ups_broker_runs(fresh_cache), 60,
               "the worker and the broker to stop")
    if sig == signal.SIGTERM:
        assert up.returncode == 0, output[-2000:]
        assert "stopped: producer, worker and broker" in output


def test_up_produce_and_watch_all_use_the_local_broker_that_runs(broker: Broker, broker_cache: Path,
                                                                 tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:10]}"  # topics and consumer group of this test's own on the shared broker
    env = environment(broker_cache, ORDERBANK_TOPIC_PREFIX=name, ORDERBANK_APP_ID=name)
    said = orderbank(env, "broker", "status")
    assert said.returncode == 0 and said.stdout.startswith(f"running at {broker.bootstrap} (pid {broker.pid}, ")
    assert orderbank(env, "broker", "start").stdout.startswith(f"broker already running at {broker.bootstrap}")

    port, orders = free_port(), 300
    launch = [orjson.dumps(doc) for doc in generate(preset("small", orders), 1)]
    up = start_up(port, env, orders)
    try:
        wait_until(lambda: snapshot(port) == the_fold(launch, Settings().bank) or up.poll() is not None, 240,
                   "the worker of `orderbank up` to fold the whole launch", every=1.0)
        assert up.poll() is None, up.communicate()[0].decode(errors="replace")[-2000:]
        assert not ups_broker_runs(broker_cache)  # no second broker

        # An event for an order never placed: the producer cannot tell, the worker dead-letters it.
        payment = next(doc for doc in map(orjson.loads, launch) if doc["type"] == "PaymentReceived")
        stray = payment | {"order_id": "ZZ-000001", "event_id": str(uuid.uuid4())}
        (tmp_path / "stray.jsonl").write_bytes(orjson.dumps(stray) + b"\n")
        sent = orderbank(env, "produce", str(tmp_path / "stray.jsonl"))
        assert sent.returncode == 0 and f"sent 1 events to {name}.events" in sent.stdout, sent.stderr

        dead = wait_until(lambda: orderbank(env, "watch", "deadletter", "--json", "--for", "3").stdout or None, 60,
                          "the stray event's dead letter")
        (letter,) = [orjson.loads(line) for line in dead.splitlines()]
        assert letter["topic"] == f"{name}.deadletter" and letter["headers"]["reason"] == "unknown_order"
        assert orjson.loads(letter["value"]) == stray  # as the producer sent it (it re-encodes what it validates)
        assert base64.b64decode(letter["value_base64"]) == letter["value"].encode()
        (line,) = orderbank(env, "watch", "deadletter", "--for", "3").stdout.splitlines()
        assert re.fullmatch(rf"{WHEN}  unknown_order \((field \S+, )?rule \w+\): .+; order ZZ-000001; from "
                            rf"{name}\.events partition \d+ offset \d+; \d+ bytes: "
                            + re.escape(letter["value"]), line)

        mine = orderbank(env, "watch", "queue", "--order", "YU7-000042", "--json", "--for", "3")
        records = [orjson.loads(line) for line in mine.stdout.splitlines()]
        assert mine.returncode == 0 and records, mine.stderr
        assert {(r["topic"], r["key"], r["value"]["order_id"]) for r in records} == {
            (f"{name}.positions", "YU7-000042", "YU7-000042")}
        for line in orderbank(env, "watch", "queue", "--order", "YU7-000042", "--for", "3").stdout.splitlines():
            assert re.fullmatch(rf"{WHEN}  YU7-000042  YU7  (position [\d,]+ of [\d,]+, (ETA .+|no ETA yet)|"
                                r"delivered|cancelled)", line), line
        pool = orderbank(env, "watch", "pool", "--for", "3").stdout.splitlines()
        assert pool and all(re.fullmatch(r"YU7 \w+ \d{4}-W\d\d: [\d,]+ open, held [\d,]+ CNY .+ realised [\d,]+ CNY",
                                         line) for line in pool), pool
        rates = orderbank(env, "watch", "cancellations", "--json", "--for", "3").stdout.splitlines()
        assert rates and {orjson.loads(line)["topic"] for line in rates} == {f"{name}.cancellations"}
        # Every order is in: from the latest offsets on, nothing new comes.
        latest = orderbank(env, "watch", "queue", "--from", "latest", "--for", "2")
        assert (latest.returncode, latest.stdout) == (0, "")
    finally:
        output = stop(up)
    assert up.returncode == 0, output[-2000:]
    assert "found running, left running" in output
    assert f"stopped: producer and worker; the broker at {broker.bootstrap} runs on" in output
    assert status(local_brokers(broker_cache)[0]).running
