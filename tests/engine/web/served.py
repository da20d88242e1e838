"""`orderbank serve LOG` as a child process, the way an auditor runs it; the URLs it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orderbank.engine.dev.children import stop_child, tied_to_this_process


def shown(html: str, test_id: str) -> str:
    """The text of the element with this data-testid in a page's HTML."""
    found = re.search(rf'data-testid="{re.escape(test_id)}"[^>]*>([^<]*)<', html)
    assert found, f"no {test_id} on the page"
    return found.group(1)


@dataclass(frozen=True)
class Served:
    dashboard: str
    policy: str
    order: str  # the sample order's page, with its secret
    output: str


@contextmanager
def serving(log: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[Served]:
    out = log.with_suffix(".serve.out")
    with out.open("wb") as sink:
        child = subprocess.Popen([sys.executable, "-m", "orderbank.engine.cli", "serve", str(log), "--port", "0",
                                  *args], stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={**os.environ, "COLUMNS": "200", **(env or {})}, start_new_session=True,
                                 preexec_fn=tied_to_this_process(signal.SIGKILL))
    try:
        deadline = time.monotonic() + timeout
        while "Ctrl-C stops" not in (text := out.read_text()):
            assert child.poll() is None, f"orderbank serve exited with {child.returncode}:\n{text}"
            assert time.monotonic() < deadline, f"orderbank serve did not start:\n{text}"
            time.sleep(0.1)
        urls = dict(re.findall(r"^(dashboard|policy|an order):\s+(\S+)", text, re.MULTILINE))
        yield Served(urls["dashboard"], urls["policy"], urls["an order"], text)
    finally:
        stop_child(child)
