"""The pages (orderbank.engine.web) in a stream worker, from its shards' banks, on its Faust web server.

A browser asking `/orders/{order_id}` for text/html gets the order's page; other clients keep the JSON view.
An order another worker owns is routed as the JSON views are: this worker checks the customer's secret and
asks the owner for the order's facts (`/pages/order/{id}`, as the service). The dashboard adds up every
worker's part (`/pages/part`) read at the latest shard clock, as `/snapshot` does. The pool over time is
sampled by each worker at every midnight its shards' clock passes, from its start (the dashboard says from
when); backlog, deliveries and cancellations over time are rebuilt from the banks and cover all history.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import msgspec
import orjson
from aiohttp import web
from faust.types import TP
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from orderbank.engine.access import Grant
from orderbank.engine.stream.runtime import Runtime
from orderbank.engine.stream.views import Unavailable, Views
from orderbank.engine.web import guard
from orderbank.engine.web.facts import (
    DashboardFacts,
    OrderFacts,
    PolicyFacts,
    bank_part,
    dashboard_facts,
    order_facts,
    past_positions,
    policy_facts,
    sample_times,
)
from orderbank.engine.web.site import NotReady, Site, guarded
from orderbank.projections.bank import OrderBank
from orderbank.projections.standing import LaneTimes, history_from_state
from orderbank.projections.trends import PoolSeries, first_placed, merge_pool

ORDER_PAGE = re.compile(r"^/orders/[^/]+$")
SAMPLE_EVERY_S = 1.0
MAX_PAST = 10_000  # orders whose past positions are kept
LANE_TIMES_TTL_S = 60.0
"""How long a lane's timeline serves order pages before it is read again (0.5 s for a lane of 300,000 orders):
it stays exact for the times before it was read, and the position now comes from the bank."""


class WorkerSource:
    """The pages' facts from this worker's shards, and from the other workers' over HTTP."""

    def __init__(self, runtime: Runtime, views: Views) -> None:
        settings = runtime.settings
        self.runtime, self.views = runtime, views
        self.access = settings.access
        self.open_on_loopback = guard.loopback(settings.web_host)
        self.live_period_s = settings.publish_interval_s
        self.report_dir: Path | None = settings.web_report_dir
        self.pool = PoolSeries()
        self._lanes: dict[tuple[int, str], tuple[float, LaneTimes]] = {}  # (read at, monotonic), by shard, lane
        self._past: dict[str, tuple[LaneTimes, list[tuple[int, int]]]] = {}  # by order: its positions until then
        self._parts: dict[int, tuple[tuple[int, int, int, int, int], dict[str, Any]]] = {}  # by shard
        self._dashboard: DashboardFacts | None = None
        self._dashboard_lock = asyncio.Lock()

    def banks(self) -> list[OrderBank]:
        return [held.shard.bank for held in self.runtime.held.values()]

    def sample_pool(self) -> None:
        self.pool.follow(self.banks(), self.views.local_clock())

    # -- an order --------------------------------------------------------------------------------------------------
    def local_order(self, order_id: str) -> OrderFacts | None:
        for partition, held in list(self.runtime.held.items()):
            bank = held.shard.bank
            order = bank.orders.get(order_id)
            if order is None:
                continue
            cached = self._lanes.get((partition, order.lane))
            now = time.monotonic()
            if cached is None or now - cached[0] > LANE_TIMES_TTL_S or order_id not in cached[1].index:
                cached = self._lanes[(partition, order.lane)] = now, LaneTimes.of(bank, order.lane)
            lane_times = cached[1]
            past = self._past.get(order_id)
            if past is None or past[0] is not lane_times:  # a live page asks every period: once per timeline
                if len(self._past) >= MAX_PAST:
                    self._past.clear()
                past = self._past[order_id] = lane_times, past_positions(bank, order_id, lane_times)
            return order_facts(bank, order_id, history_from_state(order), False, past[1])
        return None

    async def order(self, order_id: str) -> OrderFacts | None:
        found = self.local_order(order_id)
        if found is not None:
            return found
        try:
            peers = self.views.peers()
        except Unavailable as exc:
            raise NotReady(str(exc)) from None
        for url in peers:
            status, body = await self.views.fetch(url, f"/pages/order/{order_id}")
            if status == 200:
                return msgspec.json.decode(body, type=OrderFacts)
        return None

    # -- the dashboard ---------------------------------------------------------------------------------------------
    def span(self) -> dict[str, int | None]:
        firsts = [f for f in (first_placed(bank) for bank in self.banks()) if f is not None]
        return {"clock": self.views.local_clock(), "first": min(firsts) if firsts else None}

    def part(self, at: int, first: int | None) -> dict[str, Any]:
        """This worker's shards' parts (each read again only when its bank or the times changed), its pool
        samples and its health."""
        times = sample_times(first, at)
        banks = []
        for partition, held in list(self.runtime.held.items()):
            bank = held.shard.bank
            version = (bank.applied, bank.now_us, times[0], times[-1], len(times))
            cached = self._parts.get(partition)
            if cached is None or cached[0] != version:
                cached = self._parts[partition] = version, bank_part(bank, times,
                                                                     self.runtime.settings.eta_window_days)
            banks.append(cached[1])
        return {"banks": banks, "pool": self.pool.as_dict(),
                "health": {**self.runtime.health(), "frames_waiting": self.frames_waiting()}}

    def frames_waiting(self) -> int:
        """Frames in the lanes topic that this worker's shards have not applied yet (as far as its consumer saw)."""
        lanes, consumer = self.runtime.topics.lanes.name, self.runtime.app.consumer
        return sum(max(0, (consumer.highwater(TP(lanes, partition)) or 0) - held.shard.offset - 1)
                   for partition, held in list(self.runtime.held.items()))

    async def dashboard(self) -> DashboardFacts:
        async with self._dashboard_lock:  # one computation however many live pages ask
            cached = self._dashboard
            if cached is not None and time.time() - cached.computed_at < self.live_period_s:
                return cached
            try:
                self._dashboard = await self._whole()
            except Unavailable as exc:
                raise NotReady(str(exc)) from None
            return self._dashboard

    async def _whole(self) -> DashboardFacts:
        peers = self.views.peers()
        spans = [self.span(), *[orjson.loads(await self._get(url, "/pages/span")) for url in peers]]
        at = max(span["clock"] or 0 for span in spans)
        firsts = [span["first"] for span in spans if span["first"] is not None]
        first = min(firsts) if firsts else None
        query = f"/pages/part?at={at}" + (f"&first={first}" if first is not None else "")
        parts = [self.part(at, first), *[orjson.loads(await self._get(url, query)) for url in peers]]
        return dashboard_facts([bank for p in parts for bank in p["banks"]], merge_pool(p["pool"] for p in parts),
                               at, f"live from Kafka topic {self.runtime.topics.events.name}",
                               self.runtime.settings.bank,
                               sorted((p["health"] for p in parts), key=lambda h: str(h.get("worker"))),
                               self.runtime.topics.deadletter.name)

    async def _get(self, url: str, path: str) -> bytes:
        status, body = await self.views.fetch(url, path)
        if status != 200:
            raise Unavailable("a worker did not answer")
        return body

    def policy(self) -> PolicyFacts:
        return policy_facts(self.runtime.settings.bank.policy)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: faust.App, runtime: Runtime, views: Views) -> WorkerSource:
    """Serve the pages on the worker's web server, beside the JSON views."""
    source = WorkerSource(runtime, views)
    site = Site(source)
    driver = app.web
    assert isinstance(driver, AiohttpWeb), "the worker's web server is Faust's aiohttp driver"
    web_app = driver.web_app

    def service(fun: Callable[[web.Request], web.StreamResponse]) -> Handler:
        """A worker-to-worker view: the service token only, JSON errors."""
        async def handler(request: web.Request) -> web.StreamResponse:
            if source.access.bearer(request.headers) is not Grant.SERVICE:
                return web.json_response({"error": "this view needs the service token"}, status=401)
            try:
                return fun(request)
            except ValueError:
                return web.json_response({"error": "at and first are microseconds since the epoch"}, status=400)
        return handler

    def order_facts_view(request: web.Request) -> web.StreamResponse:
        found = source.local_order(request.match_info["order_id"])
        if found is None:
            return web.json_response({"error": "unknown order"}, status=404)
        return web.Response(body=msgspec.json.encode(found), content_type="application/json")

    def span_view(request: web.Request) -> web.StreamResponse:
        return web.json_response(source.span())

    def part_view(request: web.Request) -> web.StreamResponse:
        first = request.query.get("first")
        return web.Response(body=orjson.dumps(source.part(int(request.query.get("at", "")),
                                                          int(first) if first else None)),
                            content_type="application/json")

    web_app.add_routes([*site.routes(with_order_page=False),
                        web.get("/pages/order/{order_id}", service(order_facts_view)),
                        web.get("/pages/span", service(span_view)), web.get("/pages/part", service(part_view))])
    order_page = guarded(site.order)

    @web.middleware
    async def browsers_get_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
        """`/orders/{id}`: the page for a browser, the JSON view for everyone else."""
        if request.method == "GET" and ORDER_PAGE.match(request.path) and guard.wants_html(request.headers):
            return await order_page(request)
        return await handler(request)

    web_app.middlewares.append(browsers_get_pages)
    web_app.on_shutdown.append(site.close)

    @app.timer(interval=SAMPLE_EVERY_S)  # type: ignore[untyped-decorator]
    async def sample_pool() -> None:
        source.sample_pool()

    return source
