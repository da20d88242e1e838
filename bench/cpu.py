"""CPU time of a benchmark's processes, read from /proc: what each spends per event, and on how many cores.

On a machine of two cores the engine's worker, its ingest process, the broker and the peer share the cores, so
a rate alone does not say what bounds it: a process that kept a whole core busy is the bound, and what they spent
together says how much room was left. bench/stream.py samples these figures during each timed window, for the
engine, the ceiling and the peer alike, and prints them beside the rates; bench/latency.py while it sends.

A process is counted by its session (children started with `start_new_session=True` lead one; the engine's
ingest process is in its worker's session, and counted apart by its command line). Linux only: elsewhere the
figures are absent and said to be.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
INGEST = "ingest"
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return (PROC / "self" / "stat").is_file()


def session_cpu(sessions: Mapping[int, str]) -> dict[str, float]:
    """CPU seconds (user + system) of the live processes of each session, by its label; an engine's ingest
    process under INGEST."""
    spent: dict[str, float] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            # The command may hold spaces and parentheses: the fields start after its last ')'.
            fields = (PROC / entry.name / "stat").read_bytes().rsplit(b")", 1)[1].split()
            label = sessions.get(int(fields[3]))
            if label is None:
                continue
            argv = (PROC / entry.name / "cmdline").read_bytes().split(b"\0")
            if any(arg.endswith(b".ingest_process") for arg in argv):
                label = INGEST
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        spent[label] = spent.get(label, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return spent


@dataclass(frozen=True)
class Usage:
    """What the processes of one timed window spent: CPU seconds by part, over `wall` seconds."""

    cpu: dict[str, float]
    wall: float

    def busy(self) -> str:
        """Each part's cores kept busy, and all of them together: "broker 0.51, worker 0.84; together 1.35"."""
        parts = ", ".join(f"{part} {cpu / self.wall:.2f}" for part, cpu in self.cpu.items())
        return f"{parts}; together {sum(self.cpu.values()) / self.wall:.2f}"


@dataclass
class Timeline:
    """Samples of the watched sessions' CPU over time; `spent(start, end)` reads what each part used between
    two wall-clock times (linearly between samples; a part is counted from zero before it appears and keeps
    its last figure once its processes are gone)."""

    sessions: dict[int, str] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)

    def watch(self, session: int, label: str) -> None:
        self.sessions[session] = label

    def forget(self, session: int) -> None:
        self.sessions.pop(session, None)

    def sample(self) -> None:
        now = session_cpu(self.sessions)
        if self.samples:
            now = {**self.samples[-1], **now}
        self.times.append(time.time())
        self.samples.append(now)

    def spent(self, start: float, end: float) -> dict[str, float]:
        parts = {part for sample in self.samples for part in sample}
        return {part: self._at(part, end) - self._at(part, start) for part in sorted(parts)}

    def _at(self, part: str, when: float) -> float:
        i = bisect.bisect_right(self.times, when)
        if i == 0:
            return 0.0
        if i == len(self.times):
            return self.samples[-1].get(part, 0.0)
        (t0, t1), (c0, c1) = self.times[i - 1:i + 1], (self.samples[i - 1].get(part, 0.0),
                                                         self.samples[i].get(part, 0.0))
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c1
