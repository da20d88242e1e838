"""`orderbank up`: a broker, a worker and a producer of a synthetic launch in one command; Ctrl-C
stops them all cleanly. The worker's snapshot once the launch is in must be the fold of that launch."""

from __future__ import annotations

import signal
import subprocess
import urllib.error
import urllib.request

import orjson
import pytest

from engine.settings import Settings
from engine.stream_up import python_cli
from projections.bank import canonical
from replay.synth import generate, preset
from tests.stream_support import fold_lines, free_port, wait_until

pytestmark = pytest.mark.broker
ORDERS = 1_500


def snapshot(port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot", timeout=5) as response:
            return bytes(response.read())
    except (OSError, urllib.error.HTTPError):
        return None


def test_up_runs_the_pipeline_until_ctrl_c_and_then_stops_everything() -> None:
    port = free_port()
    lines = [orjson.dumps(doc) for doc in generate(preset("small", ORDERS), 1)]
    expected = canonical(fold_lines(lines, Settings().bank).snapshot())
    up = subprocess.Popen(python_cli("up", "--orders", str(ORDERS), "--rate", "5000", "--web-port", str(port)),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
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
