"""`orderbank up`: a broker, a worker and a producer of a synthetic launch in one command; Ctrl-C
stops them all cleanly. The worker's snapshot once the launch is in must be the fold of that launch.
SIGTERM stops it as cleanly, and killed outright it leaves no worker or broker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request

import orjson
import pytest

from orderbank.engine.cli.up import python_cli, up_state
from orderbank.engine.dev.broker import BrokerSettings, status
from orderbank.engine.settings import Settings
from orderbank.replay.synth import generate, preset
from tests.support.equality import the_fold
from tests.support.topics import SERVICE_TOKEN
from tests.support.workers import free_port, wait_until

pytestmark = pytest.mark.broker
ORDERS = 1_500


def snapshot(port: int) -> bytes | None:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/snapshot",
                                         headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return bytes(response.read())
    except (OSError, urllib.error.HTTPError):
        return None


def start_up(port: int) -> subprocess.Popen[bytes]:
    # As from a terminal: a shell that runs the tests in the background makes its children ignore
    # SIGINT, and a program that inherits that ignore keeps it (Python does).
    return subprocess.Popen(python_cli("up", "--orders", str(ORDERS), "--rate", "5000", "--web-port", str(port)),
                            env={**os.environ, "ORDERBANK_WEB_SERVICE_TOKEN": SERVICE_TOKEN},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def broker_runs() -> bool:
    return status(BrokerSettings(state_dir=up_state() / "broker")).running


def test_up_runs_the_pipeline_until_ctrl_c_and_then_stops_everything() -> None:
    port = free_port()
    lines = [orjson.dumps(doc) for doc in generate(preset("small", ORDERS), 1)]
    expected = the_fold(lines, Settings().bank)
    up = start_up(port)
    try:
        wait_until(lambda: snapshot(port) == expected or up.poll() is not None, 240,
                   "the worker of `orderbank up` to fold the whole launch", every=1.0)
        assert up.poll() is None, up.communicate()[0].decode(errors="replace")[-2000:]
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output = up.communicate(timeout=120)[0]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 0, output.decode(errors="replace")[-2000:]
    assert b"stopped: producer, worker and broker" in output
    assert snapshot(port) is None  # the worker is gone


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_up_stopped_by_sigterm_or_killed_leaves_no_worker_or_broker(sig: signal.Signals) -> None:
    port = free_port()
    up = start_up(port)
    try:
        wait_until(lambda: snapshot(port) is not None or up.poll() is not None, 240,
                   "the worker of `orderbank up` to serve its views", every=0.5)
        assert up.poll() is None, up.communicate()[0].decode(errors="replace")[-2000:]
        assert broker_runs()
        up.send_signal(sig)
        output = up.communicate(timeout=120)[0]
        # Killed, `up` cleans nothing: the worker and the broker go because their parent went.
        wait_until(lambda: snapshot(port) is None and not broker_runs(), 60, "the worker and the broker to stop")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    if sig == signal.SIGTERM:
        assert up.returncode == 0, output.decode(errors="replace")[-2000:]
        assert b"stopped: producer, worker and broker" in output

