"""The Kafka Streams peer (../shared/peers/kafka-streams-orderbank): find it, build it, run it, read its figures.

Its `run.sh TOPIC N memory|rocks` builds the jar on first use (into KS_BUILD_DIR, here the project's
.cache/ks-orderbank: the shared folder may be read-only) and then runs the peer on TOPIC until N input records
are folded, printing `RESULT ...: N events in S s = R/s` (fold and pool aggregate done) and
`projections: last record handed to ... at S s (R/s)` (its projection records out), both timed from its first
input record. bench/stream.py runs it beside the engine on the same topic, and samples its CPU (bench/cpu.py) over
that window, which its progress lines (every 200 ms, seconds from its first input record) place on this clock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.cpu import Timeline

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "peers" / "kafka-streams-orderbank"
BUILD_DIR = ROOT / ".cache" / "ks-orderbank"
RESULT = re.compile(r"^RESULT .*: (\d+) events in ([\d.]+) s", re.MULTILINE)
PROJECTIONS = re.compile(r"^projections: .* at ([\d.]+) s", re.MULTILINE)
PROGRESS = re.compile(r"^\.\.\. ([\d.]+) s: ")
PEER = "peer"


class PeerFailed(RuntimeError):
    """The peer's build or run failed; the message holds the end of its output."""


@dataclass(frozen=True)
class PeerRun:
    """One run's seconds from its first input record: until the fold and the pool were done, and until its
    last projection record was handed to the producer."""

    folded_s: float
    projected_s: float
    first_input_at: float | None = None  # on this machine's wall clock, from its progress lines


@dataclass(frozen=True)
class Peer:
    """The peer's folder, and the store its runs use (memory or rocks)."""

    folder: Path = DEFAULT_DIR
    store: str = "memory"

    def missing(self) -> str | None:
        """Why the peer cannot run on this machine, or None."""
        if not (self.folder / "run.sh").is_file():
            return f"no peer at {self.folder} (--peer-dir)"
        absent = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
        return f"{' and '.join(absent)} not found (the peer needs Java 17 and Maven)" if absent else None

    def build(self) -> None:
        """Build the jar now if it is absent or older than its sources, so that no run waits for Maven."""
        # run.sh builds first, then execs `java $JAVA_OPTS ...`: with -version java only prints its version.
        done = subprocess.run([str(self.folder / "run.sh"), "-", "0"], env=_environment(JAVA_OPTS="-version"),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise PeerFailed(f"its build exited with {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}")

    def run(self, bootstrap: str, topic: str, events: int, threads: int = 1,
            timeline: Timeline | None = None) -> PeerRun:
        """One run on `topic` until `events` are folded, with `threads` stream threads (its num.stream.threads);
        its session is sampled into `timeline` (as PEER) four times a second while it runs."""
        env = _environment(BOOTSTRAP=bootstrap, JAVA_OPTS=f"-Dthreads={threads} -Dprogress.ms=200")
        proc = subprocess.Popen([str(self.folder / "run.sh"), topic, str(events), self.store], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        out: list[str] = []
        first_input_at: list[float] = []

        def follow(stream: IO[str], progress: bool) -> None:
            for line in stream:
                out.append(line)
                if progress and not first_input_at and (seen := PROGRESS.match(line)) and float(seen[1]) > 0:
                    first_input_at.append(time.time() - float(seen[1]))

        readers = [threading.Thread(target=follow, args=(proc.stdout, False), daemon=True),
                   threading.Thread(target=follow, args=(proc.stderr, True), daemon=True)]
        for reader in readers:
            reader.start()
        if timeline is not None:
            timeline.watch(proc.pid, PEER)
        try:
            deadline = time.monotonic() + 1800
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise PeerFailed(f"the peer did not finish {events} events in 30 minutes")
                if timeline is not None:
                    timeline.sample()
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for reader in readers:
                reader.join(10)
            if timeline is not None:
                timeline.forget(proc.pid)
        text = "".join(out)
        result, projections = RESULT.search(text), PROJECTIONS.search(text)
        if proc.returncode != 0 or result is None or projections is None or int(result[1]) != events:
            raise PeerFailed(f"the peer (exit {proc.returncode}) printed no RESULT for {events} events:\n"
                             f"{text[-2000:]}")
        return PeerRun(float(result[2]), float(projections[1]), first_input_at[0] if first_input_at else None)

    def built(self) -> bool:
        return (BUILD_DIR / "target" / "ks-orderbank-1.jar").is_file()


def _environment(**settings: str) -> dict[str, str]:
    """run.sh's environment: this one's, the build folder, and `settings`."""
    return {**os.environ, "KS_BUILD_DIR": str(BUILD_DIR), **settings}
