"""How a command that fails says so: a line or two on standard error, what went wrong and what to do, and an exit
status that is not 0; never a traceback, unless `orderbank --debug` asks for one.

Every command runs inside `Commands.invoke`, so this is the one place that turns an exception into those lines:
orderbank's own errors (the `OrderbankError` root, projections/errors.py) say what went wrong in their message,
Kafka's that leak from its clients are said with the address they were trying, the system's (a file, a port) with
what it named, and anything else is a bug.
"""

from __future__ import annotations

import asyncio
import errno
from contextvars import ContextVar
from typing import Any, NoReturn

import typer
from aiokafka.errors import KafkaError
from typer._click.core import Context  # typer 0.28 carries its own copy of click: its commands get these contexts
from typer.core import TyperGroup

from orderbank.engine.cli.output import err
from orderbank.engine.kafka.security import KafkaSecurityError, KafkaUnreachableError, check_connection
from orderbank.engine.settings import Settings
from orderbank.projections.errors import ConfigError, OrderbankError

DEBUG = "orderbank.debug"
"""Key in the command context's meta (shared by every nested context): `--debug` was given."""
kafka_in_use: ContextVar[Settings | None] = ContextVar("kafka_in_use", default=None)
"""The settings the command connects to Kafka with (orderbank.engine.cli.connect), to say where Kafka failed."""
USAGE, FAILED, INTERRUPTED = 2, 1, 130
START_KAFKA = "start one with `orderbank broker start` or pass --bootstrap"


class Commands(TyperGroup):
    """A command group whose commands fail in a line or two (see the module's docstring)."""

    def invoke(self, ctx: Context) -> Any:
        unset = kafka_in_use.set(None)  # a command run before this one in the same process is not this one
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            raise  # typer says these itself (a usage error, an exit status) and quiets a closed pipe
        except KeyboardInterrupt:
            report(ctx, ["interrupted"], INTERRUPTED)
        except Exception as exc:
            if ctx.meta.get(DEBUG):
                raise
            report(ctx, *explain(exc, kafka_in_use.get()))
        finally:
            kafka_in_use.reset(unset)


def report(ctx: Context, lines: list[str], code: int) -> NoReturn:
    """Print the lines, the first after the command's name, and exit with `code`."""
    command = " ".join(["orderbank", *_names(ctx)[1:], *([ctx.invoked_subcommand] if ctx.invoked_subcommand else [])])
    err.print(f"{command}: {lines[0]}", markup=False)
    for line in lines[1:]:
        err.print(line, markup=False)
    raise typer.Exit(code)


def _names(ctx: Context | None) -> list[str]:
    return [] if ctx is None else [*_names(ctx.parent), ctx.info_name or ""]


def explain(exc: Exception, kafka: Settings | None) -> tuple[list[str], int]:
    """What to say about `exc`, and the exit status."""
    if isinstance(exc, KafkaUnreachableError):
        return [f"{exc}: {START_KAFKA}"], FAILED
    if isinstance(exc, ConfigError):
        return [str(exc)], USAGE
    if isinstance(exc, OrderbankError):
        # The first line says what went wrong; a broker's or a tool's output after it is for `--debug`.
        first, *more = str(exc).splitlines() or [type(exc).__name__]
        if not more:
            return [first], FAILED
        return [first.rstrip(":"), "run it again as `orderbank --debug ...` for the details"], FAILED
    if isinstance(exc, KafkaError):
        return _kafka_failure(exc, kafka), FAILED
    if isinstance(exc, OSError):  # the machine said no: a file, a port, a permission
        said = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            return [f"{said}: choose another port, or stop what listens there"], FAILED
        return [f"{exc.filename}: {said}" if exc.filename is not None else said], FAILED
    return [f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug: run it again as `orderbank --debug ...` to see where, and report it"], FAILED


def _kafka_failure(exc: KafkaError, kafka: Settings | None) -> list[str]:
    """A Kafka client's error (aiokafka retries, then raises one that names no cause, e.g. "Unable to bootstrap"):
    the connection is tried again once to say why, as a worker does before it starts."""
    if kafka is None:
        return [f"Kafka failed: {exc}"]
    try:
        asyncio.run(check_connection(kafka.bootstrap_servers, kafka.security, timeout=5))
    except KafkaSecurityError as cause:
        return explain(cause, kafka)[0]
    return [f"Kafka at {kafka.bootstrap_servers} failed: {exc}",
            "is the broker up? `orderbank broker status` says whether the local one runs"]
