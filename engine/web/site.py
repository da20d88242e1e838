"""The pages over HTTP (aiohttp handlers), for any `Source` of facts: a folded log (orderbank.engine.web.server)
or a stream worker's shards (orderbank.engine.stream.pages).

- `/orders/{order_id}?secret=...`: a customer's order page; `/orders/{order_id}/live?secret=...` streams its
  changing parts (server-sent events).
- `/`: the operations dashboard; `/events` streams its changing parts.
- `/policy`: the active policy, its parameters and the latest replay report (`/report/`).
- `/static/pages.css`, `/static/live.js`: the only files the pages load.
Every answer is read-only (GET), carries the security headers (orderbank.engine.web.guard), and an
unexpected failure is a bare "something went wrong" page with the details in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from importlib.resources import files
from pathlib import Path
from typing import Protocol

import orjson
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from orderbank.engine.access import Access, Grant
from orderbank.engine.web import guard, render
from orderbank.engine.web.facts import DashboardFacts, OrderFacts, PolicyFacts
from orderbank.engine.web.pages import dashboard_page, order_page, policy_page
from orderbank.projections.errors import StreamError
from orderbank.projections.events import OrderId

log = logging.getLogger(__name__)
ORDER_ID: TypeAdapter[str] = TypeAdapter(OrderId)
STATIC = {"pages.css": "text/css", "live.js": "text/javascript"}
MAX_STREAMS = 200  # live pages open at once
STREAM_SECONDS = 600.0  # a live page's stream ends after this and its browser opens a new one
KEEP_ALIVE_S = 15.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Source(Protocol):
    """Where the pages' facts come from."""

    access: Access
    open_on_loopback: bool  # the dashboard needs no credentials (the server listens on loopback only)
    live_period_s: float  # how often live pages look for changes
    report_dir: Path | None

    async def order(self, order_id: str) -> OrderFacts | None:
        """The order's facts, or None when no shard holds it (the caller has checked its credentials)."""
        ...

    async def dashboard(self) -> DashboardFacts: ...
    def policy(self) -> PolicyFacts: ...


class NotReady(StreamError):
    """The figures cannot be gathered right now (a stream's shards are moving between workers): retry soon."""


def guarded(fun: Handler) -> Handler:
    """Limits on the request; an unexpected failure is a bare 500 page, its details only in the log."""

    @wraps(fun)
    async def handler(request: web.Request) -> web.StreamResponse:
        if len(request.query_string) > guard.MAX_QUERY or len(request.raw_path) > guard.MAX_PATH + guard.MAX_QUERY:
            return guard.too_long()
        try:
            return await fun(request)
        except web.HTTPException:
            raise
        except NotReady:
            return guard.message(503, "The figures are being gathered",
                                 "Part of the bank is moving between servers. Try again in a few seconds.",
                                 headers={"Retry-After": "5"})
        except Exception:
            log.exception("page %s failed", request.path)
            return guard.message(500, "Something went wrong", "The page could not be shown. Try again shortly.")

    return handler


class Site:
    """The handlers, bound to one source."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.streams = 0
        self.closing: asyncio.Event | None = None
        self._dashboard: tuple[DashboardFacts, dict[str, str]] | None = None

    def routes(self, with_order_page: bool = True) -> list[web.RouteDef]:
        """Every page's route; a worker leaves `/orders/{order_id}` to its JSON view, which hands browsers here."""
        pages = [web.get("/", guarded(self.dashboard)), web.get("/events", guarded(self.dashboard_live)),
                 web.get("/policy", guarded(self.policy)), web.get("/report/", guarded(self.report)),
                 web.get("/static/{name}", guarded(self.static)),
                 web.get("/orders/{order_id}/live", guarded(self.order_live))]
        return [*pages, web.get("/orders/{order_id}", guarded(self.order))] if with_order_page else pages

    async def close(self, app: web.Application | None = None) -> None:
        """End the live streams (on shutdown: a browser would otherwise hold the server open)."""
        if self.closing is not None:
            self.closing.set()

    # -- a customer's order --------------------------------------------------------------------------------------
    async def _order_facts(self, request: web.Request) -> OrderFacts | web.Response:
        order_id = request.match_info["order_id"]
        try:
            ORDER_ID.validate_python(order_id)
        except ValidationError:
            return guard.bad_order_id()
        if guard.order_grant(self.source.access, order_id, request) is Grant.NONE:
            return guard.unknown_order()  # whether the order exists is the secret's to tell
        facts = await self.source.order(order_id)
        return guard.unknown_order() if facts is None else facts

    async def order(self, request: web.Request) -> web.StreamResponse:
        facts = await self._order_facts(request)
        if isinstance(facts, web.Response):
            return facts
        stream = request.path + "/live" + (f"?{request.query_string}" if request.query_string else "")
        body = render.page("order", {**order_page(facts), "stream": stream})
        return guard.html_page(body, private=True)

    async def order_live(self, request: web.Request) -> web.StreamResponse:
        facts = await self._order_facts(request)
        if isinstance(facts, web.Response):
            return facts
        order_id = request.match_info["order_id"]

        async def parts() -> dict[str, str] | None:
            now = await self.source.order(order_id)
            return None if now is None else render.live_parts("order", order_page(now))

        return await self._stream(request, parts)

    # -- operations ------------------------------------------------------------------------------------------------
    async def _dashboard_context(self) -> tuple[dict[str, object], dict[str, str]]:
        facts = await self.source.dashboard()
        context = {**dashboard_page(facts), "age": round(max(0.0, time.time() - facts.computed_at), 1)}
        if self._dashboard is None or self._dashboard[0] is not facts:
            self._dashboard = facts, render.live_parts("dashboard", context)
        parts = dict(self._dashboard[1])
        parts["freshness"] = render.environment().get_template("parts/dashboard_freshness.html").render(context)
        return context, parts

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        refused = guard.operator(self.source.access, self.source.open_on_loopback, request)
        if refused is not None:
            return refused
        context, _ = await self._dashboard_context()
        return guard.html_page(render.page("dashboard", {**context, "stream": "/events"}), private=True)

    async def dashboard_live(self, request: web.Request) -> web.StreamResponse:
        refused = guard.operator(self.source.access, self.source.open_on_loopback, request)
        if refused is not None:
            return refused

        async def parts() -> dict[str, str]:
            return (await self._dashboard_context())[1]

        return await self._stream(request, parts)

    # -- policy, report, files -----------------------------------------------------------------------------------
    async def policy(self, request: web.Request) -> web.StreamResponse:
        facts = self.source.policy()
        if self.source.report_dir is not None and (self.source.report_dir / "index.html").is_file():
            facts.report_url = "/report/"
        return guard.html_page(render.page("policy", policy_page(facts)))

    async def report(self, request: web.Request) -> web.StreamResponse:
        index = self.source.report_dir / "index.html" if self.source.report_dir is not None else None
        if index is None or not index.is_file():
            return guard.message(404, "No replay report here", "This server was started without a report.")
        return guard.html_page(index.read_text(), csp=guard.REPORT_CSP)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            return guard.message(404, "Page not found", "There is no page at this address.")
        body = files("orderbank.engine.web").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name], charset="utf-8",
                            headers={**guard.HEADERS, "Cache-Control": "max-age=300"})

    # -- live updates ----------------------------------------------------------------------------------------------
    async def _stream(self, request: web.Request,
                      parts: Callable[[], Awaitable[dict[str, str] | None]]) -> web.StreamResponse:
        """Server-sent events: each `update` carries the page parts that changed since the last one."""
        if self.streams >= MAX_STREAMS:
            return guard.message(503, "Too many live pages", "Reload in a minute.")
        if self.closing is None:
            self.closing = asyncio.Event()
        response = web.StreamResponse(headers={**guard.HEADERS, **guard.PRIVATE, "Content-Type": "text/event-stream",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        self.streams += 1
        loop = asyncio.get_running_loop()
        end, quiet_since = loop.time() + STREAM_SECONDS, loop.time()
        sent: dict[str, str] = {}
        try:
            await response.write(b"retry: 3000\n\n")
            while not self.closing.is_set() and loop.time() < end:
                try:
                    now = await parts()
                except NotReady:  # the next period will do
                    now = {}
                if now is None:
                    break
                changed = {name: html for name, html in now.items() if sent.get(name) != html}
                if changed:
                    await response.write(b"event: update\ndata: " + orjson.dumps(changed) + b"\n\n")
                    sent.update(changed)
                    quiet_since = loop.time()
                elif loop.time() - quiet_since > KEEP_ALIVE_S:
                    await response.write(b": still here\n\n")
                    quiet_since = loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), self.source.live_period_s)
        except ConnectionError:  # the browser went away
            pass
        finally:
            self.streams -= 1
        return response

