"""Where the commands write: results to standard output, progress and errors to standard error."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import NoReturn

import typer
from rich.console import Console

from orderbank.projections.codec import Rejection

console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True, highlight=False)  # an error is one line, whatever the width


def print_rejected(kept: list[tuple[int, Rejection]], total: int) -> None:
    """The rejected lines kept, by number, then how many more there were."""
    for number, rejection in kept:
        err.print(f"line {number}: {rejection.reason.value} ({rejection.rule}): {rejection.message}", markup=False)
    if total > len(kept):
        err.print(f"... and {total - len(kept):,} more rejected lines")


def fail(command: str, problem: Exception, after: str = "") -> NoReturn:
    """Say on one line what stopped the command (and `after`, what it had done), and exit with status 1."""
    err.print(f"orderbank {command}: {problem}{after}", markup=False)
    raise typer.Exit(1)


def quiet_kafka_clients() -> Callable[[], None]:
    """Keep the warnings of Kafka's client from people until the returned function is called: it logs the retries
    it recovers from (a partition's leader moving, say) on standard error when nothing else configures logging, and
    a failure reaches people as orderbank's own line. A worker keeps them in its log; `orderbank --debug` shows
    them."""
    kafka = logging.getLogger("aiokafka")
    before = kafka.level
    kafka.setLevel(logging.ERROR)
    return lambda: kafka.setLevel(before)
