"""bench/cpu.py: the CPU a benchmark's processes spent, read from /proc by session."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.cpu import INGEST, Timeline, available

# A child that spends `seconds` of CPU, starts a grandchild (named like an engine's ingest process) that spends
# as much, then waits to be killed: both are still alive when sampled.
BURN = """
import subprocess, sys, time
def burn(seconds):
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
burn(float(sys.argv[1]))
if len(sys.argv) > 2:
    subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1], "orderbank.engine.stream.ingest_process"])
time.sleep(60)
"""
GRANDCHILD = BURN.replace("if len(sys.argv) > 2:", "if False:")


@pytest.mark.skipif(not available(), reason="no /proc on this system")
def test_a_sessions_cpu_is_counted_by_part() -> None:
    timeline = Timeline()
    started = time.time()
    child = subprocess.Popen([sys.executable, "-c", BURN, "0.4", GRANDCHILD], start_new_session=True)
    try:
        timeline.watch(child.pid, "worker")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            timeline.sample()
            if timeline.samples[-1].get(INGEST, 0.0) >= 0.4:
                break
            time.sleep(0.05)
        spent = timeline.spent(started - 1, time.time() + 1)
    finally:
        subprocess.run(["pkill", "-s", str(child.pid)], check=False)
        child.wait()
    # The interpreters' own start-up comes on top of each 0.4 s of burning.
    assert 0.4 <= spent["worker"] < 1.0
    assert 0.4 <= spent[INGEST] < 1.0


def test_spent_is_read_between_samples() -> None:
    timeline = Timeline(times=[10.0, 20.0, 30.0],
                        samples=[{"broker": 1.0}, {"broker": 3.0, "worker": 2.0}, {"broker": 4.0, "worker": 6.0}])
    assert timeline.spent(15.0, 25.0) == {"broker": 1.5, "worker": 3.0}
    # Before the first sample nothing was counted; after the last, each part keeps its figure.
    assert timeline.spent(0.0, 40.0) == {"broker": 4.0, "worker": 6.0}
    assert timeline.spent(30.0, 40.0) == {"broker": 0.0, "worker": 0.0}


def test_a_part_keeps_its_figure_once_its_processes_are_gone() -> None:
    timeline = Timeline(sessions={-1: "nobody"})
    timeline.samples.append({"peer": 5.0})
    timeline.times.append(time.time() - 1)
    timeline.sample()  # no process of session -1: the peer's 5 s stay
    assert timeline.samples[-1] == {"peer": 5.0}
