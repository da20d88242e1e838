"""`orderbank produce` against a real broker: a damaged log is reported in one line saying how many events were sent
before it; blank lines keep the file's numbering, a byte order mark is not part of the first event, and the rejected
lines shown are the first ones, the rest counted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orderbank.engine.dev.broker import Broker
from orderbank.projections.bank import REJECTED_KEPT
from orderbank.replay.logfile import BOM
from tests.support.logfiles import launch, truncated
from tests.support.topics import read_topic, unique_settings


def produce(log: Path, bootstrap: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orderbank.engine.cli", "produce", str(log),
                           "--bootstrap", bootstrap, "--prefix", prefix], capture_output=True, text=True, timeout=300)


def said(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_truncated_gzip_stops_produce_with_one_line_saying_what_was_sent(broker: Broker, tmp_path: Path) -> None:
    log = tmp_path / "launch.jsonl.gz"
    whole = truncated(log, orders=3000)
    settings = unique_settings(broker.bootstrap)
    done = produce(log, broker.bootstrap, settings.topic_prefix)
    topic = f"{settings.topic_prefix}.events"
    assert done.returncode == 1 and not done.stdout
    assert said(done.stderr) == [f"orderbank produce: {log}: the compressed data ends early after line {whole:,} "
                                 f"(truncated file?); sent {whole:,} events to {topic} before it"]
    assert len(read_topic(settings, topic)) == whole


def test_produce_numbers_lines_as_the_file_does_and_shows_the_first_rejected(broker: Broker, tmp_path: Path) -> None:
    plain, log = tmp_path / "plain.jsonl", tmp_path / "edited.jsonl"
    events = launch(plain, orders=100)
    lines = plain.read_bytes().splitlines()
    bad = [b"{not json"] * (REJECTED_KEPT + 5)
    log.write_bytes(BOM + b"\n".join([*lines[:3], b"", b"   ", *bad, *lines[3:]]) + b"\n")
    settings = unique_settings(broker.bootstrap)
    done = produce(log, broker.bootstrap, settings.topic_prefix)
    assert done.returncode == 0, done.stderr
    shown = said(done.stderr)
    assert [line.split(": ")[:2] for line in shown[:-1]] == [
        [f"line {number}", "malformed_json (json)"] for number in range(6, 6 + REJECTED_KEPT)]
    assert shown[-1] == "... and 5 more rejected lines"
    assert f"sent {events:,} events to {settings.topic_prefix}.events; {len(bad):,} lines rejected" in done.stdout
