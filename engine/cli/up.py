"""`orderbank up`: the whole pipeline on this machine in one command, stopped by Ctrl-C.

It uses the Kafka every command finds (orderbank.engine.cli.connect: --bootstrap, ORDERBANK_BOOTSTRAP_SERVERS or a
local broker that runs) and otherwise starts a fresh local one (orderbank.engine.dev.broker), then one worker (a
child `orderbank worker`) and a producer streaming a synthetic launch (orderbank.replay.synth) at a fixed rate, and
shows a live summary read from the worker's HTTP views. Ctrl-C or SIGTERM stops the producer, the worker and the
broker it started, in that order, each cleanly; killed outright, it takes the worker and that broker with it
(orderbank.engine.dev.children). A broker it found runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import aiohttp
import orjson
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from orderbank.engine.cache import cache_dir
from orderbank.engine.cli.connect import Bootstrap, chosen_bootstrap, kafka_settings
from orderbank.engine.dev.broker import UP_DIR, Broker, local_brokers
from orderbank.engine.dev.children import stop_child, tied_to_this_process
from orderbank.engine.kafka.producer import EventProducer
from orderbank.engine.settings import ENV_PREFIX, Settings
from orderbank.projections.errors import StreamError
from orderbank.replay.render import money, when
from orderbank.replay.synth import generate, preset

console = Console()


def python_cli(*args: str) -> list[str]:
    """The command line that runs `orderbank <args>` with this interpreter."""
    return [sys.executable, "-m", "orderbank.engine.cli", *args]


def up_state() -> Path:
    """Where `up` keeps its broker's and worker's files (a fresh broker each run)."""
    return cache_dir() / UP_DIR


def up(
    orders: Annotated[int, typer.Option(help="orders in the synthetic launch")] = 20_000,
    rate: Annotated[float, typer.Option(help="events per second to produce")] = 2_000,
    seed: Annotated[int, typer.Option(help="seed of the synthetic launch")] = 1,
    web_port: Annotated[int, typer.Option(help="port of the worker's HTTP views")] = 6066,
    bootstrap: Bootstrap = None,
) -> None:
    """Run a worker and a producer of a synthetic launch on the Kafka found (else a broker of its own), with a live
    summary (Ctrl-C stops)."""
    signal.signal(signal.SIGTERM, _interrupt)
    state = up_state()
    found = chosen_bootstrap(bootstrap)
    broker = None if found is not None else Broker(local_brokers()[1])
    worker: subprocess.Popen[bytes] | None = None
    try:
        if broker is not None:
            with console.status("starting Kafka (the first run downloads its jars with mvn)..."):
                found = broker.start()
        # The views are private: without a configured service token, this run makes one and says it.
        token = os.environ.get(ENV_PREFIX + "WEB_SERVICE_TOKEN") or secrets.token_urlsafe(24)
        settings = kafka_settings(bootstrap_servers=found, web_port=web_port, data_dir=state / "worker",
                                  web_service_token=token)
        env = {**os.environ, **{ENV_PREFIX + k.upper(): str(v) for k, v in (
            ("bootstrap_servers", settings.bootstrap_servers), ("web_port", web_port), ("data_dir", state / "worker"),
            ("web_service_token", token))}}
        state.mkdir(parents=True, exist_ok=True)
        with (state / "worker.log").open("wb") as log:
            worker = subprocess.Popen(python_cli("worker", "--loglevel", "info"), env=env, stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                      # Its state is durable in Kafka; without a broker it would take
                                      # a minute of retries to stop gracefully.
                                      preexec_fn=tied_to_this_process(signal.SIGKILL))
            whose = "started for this run" if broker is not None else "found running, left running"
            console.print(f"broker {settings.bootstrap_servers} ({whose}); worker http://127.0.0.1:{web_port} "
                          f"(log {state / 'worker.log'})", soft_wrap=True)
            console.print(f"service token of the views: {ENV_PREFIX}WEB_SERVICE_TOKEN={token}", soft_wrap=True)
            console.print(f"operations dashboard: http://127.0.0.1:{web_port}/ (customers' pages: docs/pages.md)")
            asyncio.run(_run(settings, orders, rate, seed, worker))
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        if worker is not None:
            stop_child(worker)
        if broker is not None:
            broker.stop()
        if worker is not None:
            console.print("stopped: producer, worker and broker" if broker is not None else
                          f"stopped: producer and worker; the broker at {found} runs on")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops `up` as Ctrl-C does: through asyncio's SIGINT handler while the pipeline runs
    (it cancels the main task, so the producer flushes and closes), else with KeyboardInterrupt."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # SIGINT ignored (a background job): SIGTERM still stops
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


async def _run(settings: Settings, orders: int, rate: float, seed: int, worker: subprocess.Popen[bytes]) -> None:
    produced = [0]
    async with EventProducer(settings) as producer:
        feeding = asyncio.create_task(_feed(producer, orders, rate, seed, produced))
        try:
            await _summary(settings, produced, worker)
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding


async def _feed(producer: EventProducer, orders: int, rate: float, seed: int, produced: list[int]) -> None:
    started = time.monotonic()
    for doc in generate(preset("small", orders), seed):
        await producer.send(doc)
        produced[0] += 1
        ahead = produced[0] / rate - (time.monotonic() - started)
        if ahead > 0.01:
            await asyncio.sleep(ahead)
    await producer.flush()


async def _summary(settings: Settings, produced: list[int], worker: subprocess.Popen[bytes]) -> None:
    url = f"http://127.0.0.1:{settings.web_port}"
    token = settings.access.service_token
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5),
                                     headers={"Authorization": f"Bearer {token}"}) as http:
        with Live(console=console, refresh_per_second=2) as live:
            while worker.poll() is None:
                live.update(summary_table(produced[0], *[await _get(http, url + path)
                                                  for path in ("/health", "/cancellations", "/pool")]))
                await asyncio.sleep(1)
    raise StreamError(f"the worker exited with code {worker.returncode}; see its log")


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    try:
        async with http.get(url) as response:
            return orjson.loads(await response.read()) if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def summary_table(produced: int, health: Any, rates: Any, pool: Any) -> Table:
    """The live summary from the worker's views (None: not answering yet): counts, the as-of time, the pool held."""
    table = Table("figure", "value", title="orderbank up (Ctrl-C stops)")
    table.add_row("events produced", f"{produced:,}")
    if health is None:
        table.add_row("worker", "starting...")
        return table
    shards = health["shards"].values()
    table.add_row("events processed", f"{sum(s['processed'] for s in shards):,}")
    table.add_row("input lag", f"{health['ingest']['lag']:,}")
    table.add_row("orders", f"{sum(s['orders'] for s in shards):,}")
    table.add_row("as of", when(max((s["as_of"] for s in shards if s["as_of"]), default=None)))
    if rates is not None:
        overall = rates["overall"]
        share = f"{overall['rate']:.1%}" if overall["rate"] is not None else "-"
        table.add_row("cancelled", f"{overall['cancelled']:,} of {overall['placed']:,} ({share})")
    if pool is not None:
        totals = pool["totals"]
        table.add_row("open orders", f"{sum(figures['open_orders'] for figures in totals.values()):,}")
        for currency, figures in totals.items():
            table.add_row("prepayments held", money(figures["held"], currency))
    return table



def register(app: typer.Typer) -> None:
    """Add `up` to the `orderbank` app."""
    app.command()(up)
