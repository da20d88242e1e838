"""The pages without a broker: `orderbank serve LOG` folds a log with the live reducer and serves the same
pages a worker serves, at the log's last event (or at `--until`: what customers saw then). An auditor can
point it at a history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from orderbank.engine.access import Access
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
from orderbank.engine.web.site import Site
from orderbank.projections.standing import LaneTimes
from orderbank.projections.trends import first_placed
from orderbank.replay.audit import Audit

LIVE_PERIOD_S = 5.0  # a folded log does not change: live pages only say how old the figures are


@dataclass
class LogSource:
    """A folded log as the pages' source. The bank never changes, so everything is computed once."""

    audit: Audit
    name: str
    access: Access
    open_on_loopback: bool
    report_dir: Path | None = None
    live_period_s: float = LIVE_PERIOD_S
    _lanes: dict[str, LaneTimes] = field(default_factory=dict)
    _dashboard: DashboardFacts | None = None

    async def order(self, order_id: str) -> OrderFacts | None:
        bank = self.audit.bank
        order = bank.orders.get(order_id)
        if order is None:
            return None
        lane = self._lanes.get(order.lane)
        if lane is None:
            lane = self._lanes[order.lane] = LaneTimes.of(bank, order.lane, self.audit.events.paid_at)
        return order_facts(bank, order_id, self.audit.events.of(order_id), True,
                           past_positions(bank, order_id, lane))

    async def dashboard(self) -> DashboardFacts:
        if self._dashboard is None:
            bank = self.audit.bank
            times = sample_times(first_placed(bank), bank.now_us)
            self._dashboard = dashboard_facts([bank_part(bank, times, bank.settings.eta_window_days)],
                                              self.audit.pool.as_dict(), bank.now_us, f"folded from {self.name}",
                                              bank.settings)
        return self._dashboard

    def policy(self) -> PolicyFacts:
        return policy_facts(self.audit.bank.settings.policy)


@web.middleware
async def _pages_only(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Unknown addresses and methods get a page, not the server's plain-text default."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return guard.message(405, "Read-only", "These pages can only be read.", headers={"Allow": "GET, HEAD"})
    except web.HTTPNotFound:
        return guard.message(404, "Page not found", "There is no page at this address.")


def application(source: LogSource) -> web.Application:
    site = Site(source)
    app = web.Application(middlewares=[_pages_only])
    app.add_routes(site.routes())
    app.on_shutdown.append(site.close)
    return app


async def serve(source: LogSource, host: str, port: int, ready: Callable[[int], None]) -> None:
    """Serve until cancelled; `ready` gets the port (the one the system chose, for port 0)."""
    runner = web.AppRunner(application(source), access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        ready(int(runner.addresses[0][1]))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
