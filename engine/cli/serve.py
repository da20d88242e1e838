"""The pages' commands: `serve` (a log's pages without a broker) and `lookup-secret` (the link a customer's
order confirmation carries)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import Progress

from orderbank.engine.access import SECRET_PARAM, Access, lookup_secret
from orderbank.engine.cli.core import policy_option
from orderbank.engine.cli.options import TIME, parse_time
from orderbank.engine.cli.output import console, err
from orderbank.engine.settings import Settings
from orderbank.engine.web.guard import loopback
from orderbank.engine.web.server import LogSource
from orderbank.engine.web.server import serve as serve_pages
from orderbank.engine.web.site import ORDER_ID
from orderbank.projections.bank import OrderBank
from orderbank.projections.orders import micros
from orderbank.replay.audit import fold_for_pages
from orderbank.replay.source import FileSource


def sample_order(bank: OrderBank) -> str | None:
    """An order to show: the middle of the longest queue, or any order when none is open."""
    lanes = sorted(bank.queue.lanes.values(), key=lambda lane: len(lane.open), reverse=True)
    if lanes and lanes[0].open:
        return str(lanes[0].open[len(lanes[0].open) // 2][-1])
    return next(iter(bank.orders), None)


def serve(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines event log (.jsonl, .jsonl.gz)")],
    policy: Annotated[str, typer.Option(help="ordering policy, e.g. fifo or bounded-overtake:k=500")] = "fifo",
    host: Annotated[str, typer.Option(help="address to listen on; beyond loopback the dashboard needs the "
                                           "service token")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free one)")] = 8080,
    until: Annotated[datetime | None, typer.Option(
        parser=parse_time, metavar=TIME, help="fold the events up to this time (UTC if no zone): the pages as "
                                                "customers saw them then")] = None,
    report: Annotated[Path | None, typer.Option(help="a replay report directory to link from the policy page")]
    = None,
) -> None:
    """Fold a log and serve its pages: the operations dashboard, every customer's order page, the policy."""
    settings, bank_settings = Settings.from_env(), policy_option(policy)
    access = settings.access
    if access.lookup_key is None:
        key = secrets.token_urlsafe(24)
        access = Access(key, access.service_token)
        console.print(f"no ORDERBANK_WEB_LOOKUP_KEY set: order links for this run use the key [bold]{key}[/]")
    until_us = micros(until) if until else None
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"fold {log.name}", total=None)
        audit = fold_for_pages(FileSource(log), bank_settings, lambda n: progress.update(task, completed=n), until_us)
    bank = audit.bank
    console.print(f"folded {bank.applied:,} events of {len(bank.orders):,} orders"
                  + (f" up to {until:%Y-%m-%d %H:%M}" if until else ""))
    on_loopback = loopback(host)
    if not on_loopback and access.service_token is None:
        err.print("the dashboard is off: it listens beyond loopback and ORDERBANK_WEB_SERVICE_TOKEN is not set")
    source = LogSource(audit, log.name, access, on_loopback, report)
    sample = sample_order(bank)

    def ready(bound: int) -> None:
        base = f"http://{'localhost' if on_loopback else host}:{bound}"
        console.print(f"dashboard: {base}/" + ("" if on_loopback else " (user any, password: the service token)"))
        console.print(f"policy:    {base}/policy")
        if sample is not None and access.lookup_key is not None:
            secret = lookup_secret(access.lookup_key, sample)
            console.print(f"an order:  {base}/orders/{sample}?{SECRET_PARAM}={secret}")
        console.print("Ctrl-C stops", soft_wrap=True)
        console.file.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_pages(source, host, port, ready))


def lookup_secret_command(
    order_id: Annotated[str, typer.Argument(help="the order's id, e.g. YU7-000042")],
    url: Annotated[str, typer.Option(help="where the pages are served")] = "http://localhost:6066",
) -> None:
    """The secret (and link) that lets a customer open their order's page: for the order confirmation."""
    try:
        ORDER_ID.validate_python(order_id)
    except ValidationError:
        raise typer.BadParameter("order_id must be 1-64 of A-Z a-z 0-9 _ . : - starting alphanumeric") from None
    key = Settings.from_env().access.lookup_key
    if key is None:
        raise typer.BadParameter("set ORDERBANK_WEB_LOOKUP_KEY (the key the servers use) to make a secret")
    secret = lookup_secret(key, order_id)
    console.print(secret)
    console.print(f"{url.rstrip('/')}/orders/{order_id}?{SECRET_PARAM}={secret}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add these commands to the `orderbank` app."""
    app.command()(serve)
    app.command("lookup-secret")(lookup_secret_command)
