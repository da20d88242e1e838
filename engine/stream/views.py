"""HTTP views of a worker (Faust web): read-only, exact queries of the live projections.

- `/orders/{order_id}`: position, ETA band and payments of one order, read at its shard's clock.
  A worker that does not own the order asks the others (`?local=1` stops the fan-out).
- `/queue/{lane}`: one lane's exact snapshot, routed to the worker owning the lane's shard.
- `/snapshot`, `/queue`, `/pool`, `/cancellations`: the whole bank across every worker's shards,
  merged at the latest shard clock (orderbank.projections.merge): byte for byte the fold's snapshot once
  the workers are caught up.
- `/health` (200 ok, or 503 degraded with the reasons: orderbank.engine.stream.vitals), `/metrics` (Prometheus);
  `/shards/clock` and `/shards/parts` serve the merge.
Only GET; path and query parameters are validated; errors are `{"error": ...}` without internals.

Private (orderbank.engine.access): an order answers to its lookup secret (`?secret=`) or the service token
(`Authorization: Bearer`), and says "unknown order or wrong secret" alike for an order that does not exist
and a wrong secret; every other view but `/health` and `/metrics` needs the service token. Workers send it
to each other when they route a request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any
from urllib.parse import quote, urlencode

import faust
import orjson
from aiohttp import ClientTimeout
from pydantic import TypeAdapter, ValidationError

from orderbank.engine.access import SECRET_HEADER, SECRET_PARAM, Grant
from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.kafka.topics import BANK_TABLE
from orderbank.engine.stream.metrics import CONTENT_TYPE
from orderbank.engine.stream.runtime import Runtime
from orderbank.engine.stream.vitals import OK
from orderbank.projections.bank import canonical
from orderbank.projections.errors import OrderbankError, StreamError
from orderbank.projections.events import OrderId
from orderbank.projections.merge import Part, merge, part
from orderbank.projections.standing import order_view as order_view  # re-exported: moved to the core

log = logging.getLogger(__name__)
ORDER_ID: TypeAdapter[str] = TypeAdapter(OrderId)
# A lane is a model or model/trim; "." and ".." segments are refused, since proxies would resolve them.
_SEGMENT = r"(?!\.\.?(?:/|$))[^\x00-\x1f\x7f/]{1,64}"
LANE = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})?$")
JSON = "application/json"
PEER_TIMEOUT = ClientTimeout(total=10)
Handler = Callable[..., Awaitable[Any]]


UNKNOWN_ORDER = "unknown order or wrong secret"
NEEDS_TOKEN = "this view needs the service token (Authorization: Bearer ...)"
TOKEN_OFF = "this view is off: no service token is configured (ORDERBANK_WEB_SERVICE_TOKEN)"


class Unavailable(StreamError):
    """Some shard has no reachable owner right now (rebalancing, or a worker is down)."""


class Forbidden(OrderbankError):
    """The request's credentials do not allow this view."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


def guarded(fun: Handler) -> Handler:
    """Unexpected errors become a bare 500: the log has the details, the client does not."""

    @wraps(fun)
    async def view(self: Any, request: Any, **params: Any) -> Any:
        try:
            return await fun(self, request, **params)
        except Forbidden as exc:
            return self.error(exc.status, str(exc), headers=exc.headers)
        except Unavailable as exc:
            return self.error(503, str(exc))
        except Exception:
            log.exception("view %s failed", request.path)
            return self.error(500, "internal error")

    return view


class Views:
    """The queries, with the routing between workers they need."""

    def __init__(self, app: faust.App, runtime: Runtime) -> None:
        self.app, self.runtime = app, runtime
        self.me = runtime.settings.advertised_url.rstrip("/")
        self.access = runtime.settings.access
        token = self.access.service_token
        self.as_service = {"Authorization": f"Bearer {token}"} if token else {}

    def service_only(self, request: Any) -> None:
        """Forbidden unless the request carries the service token."""
        if not self.access.service_token:
            raise Forbidden(403, TOKEN_OFF)
        if self.access.bearer(request.headers) is not Grant.SERVICE:
            raise Forbidden(401, NEEDS_TOKEN, {"WWW-Authenticate": 'Bearer realm="orderbank"'})

    def owners(self) -> dict[str, set[int]]:
        """Worker URL -> the shards it owns; Unavailable unless every shard has an owner."""
        owners: dict[str, set[int]] = {}
        for url, topics in self.app.router.table_metadata(BANK_TABLE).items():
            for partitions in topics.values():
                owners.setdefault(str(url).rstrip("/"), set()).update(partitions)
        owned = set().union(*owners.values()) if owners else set()
        if owned != set(range(self.runtime.topics.lanes.partitions)):
            raise Unavailable("shards are being assigned; retry shortly")
        return owners

    def peers(self) -> list[str]:
        return [url for url in self.owners() if url != self.me]

    async def fetch(self, url: str, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """GET from another worker, as this service unless other credentials are given."""
        async with self.app.http_client.get(f"{url}{path}", timeout=PEER_TIMEOUT,
                                            headers=self.as_service if headers is None else headers) as response:
            return response.status, await response.read()

    def local_clock(self) -> int:
        return max((h.shard.bank.now_us for h in self.runtime.held.values()), default=0)

    def local_parts(self, at: int) -> list[Part]:
        return [part(h.shard.bank, at) for h in self.runtime.held.values()]

    async def merged(self) -> dict[str, object]:
        """The bank across all shards; retried when a shard moved past the chosen clock meanwhile."""
        for _ in range(5):
            peers = self.peers()
            at = self.local_clock()
            for url in peers:
                at = max(at, orjson.loads(await self._get(url, "/shards/clock"))["clock"])
            parts, clock = self.local_parts(at), self.local_clock()
            for url in peers:
                doc = orjson.loads(await self._get(url, f"/shards/parts?at={at}"))
                parts += doc["parts"]
                clock = max(clock, doc["clock"])
            if clock <= at:
                return merge(parts, at, self.runtime.settings.bank)
        raise Unavailable("the bank kept moving while it was read; retry")

    async def _get(self, url: str, path: str) -> bytes:
        status, body = await self.fetch(url, path)
        if status != 200:
            raise Unavailable("a worker did not answer")
        return body


def install(app: faust.App, runtime: Runtime) -> Views:
    views = Views(app, runtime)
    canonical_json = {"content_type": JSON}

    @app.page("/health")
    @guarded
    async def health(self: Any, request: Any) -> Any:
        health = runtime.health()
        return self.bytes(canonical(health), status=200 if health["status"] == OK else 503, **canonical_json)

    @app.page("/metrics")
    @guarded
    async def metrics(self: Any, request: Any) -> Any:
        return self.bytes(runtime.render_metrics(), content_type=CONTENT_TYPE.split(";")[0])

    @app.page("/orders/{order_id}")
    @guarded
    async def order(self: Any, request: Any, order_id: str) -> Any:
        try:
            ORDER_ID.validate_python(order_id)
        except ValidationError:
            return self.error(400, "order_id must be 1-64 of A-Z a-z 0-9 _ . : - starting alphanumeric")
        if views.access.order(order_id, request.headers, request.query) is Grant.NONE:
            return self.error(404, UNKNOWN_ORDER)  # whether the order exists is the secret's to tell
        for held in runtime.held.values():
            if order_id in held.shard.bank.orders:
                return self.bytes(canonical(order_view(held.shard.bank, order_id)), **canonical_json)
        if request.query.get("local") != "1":
            secret = request.query.get(SECRET_PARAM)
            query = urlencode({"local": "1", **({SECRET_PARAM: secret} if secret else {})})
            asked = {k: request.headers[k] for k in ("Authorization", SECRET_HEADER) if k in request.headers}
            for url in views.peers():
                status, body = await views.fetch(url, f"/orders/{order_id}?{query}", asked)
                if status == 200:
                    return self.bytes(body, **canonical_json)
        return self.error(404, UNKNOWN_ORDER)

    @app.page("/queue/{lane:.+}")
    @guarded
    async def lane(self: Any, request: Any, lane: str) -> Any:
        views.service_only(request)
        if not LANE.match(lane):
            return self.error(400, "lane must be a model or model/trim of 1-64 printable characters, "
                                   "not '.' or '..'")
        for held in runtime.held.values():
            if lane in held.shard.bank.queue.lanes:
                bank = held.shard.bank
                return self.bytes(canonical(bank.queue.lane_snapshot(lane, bank.now_us)), **canonical_json)
        shard = partition_for(lane.encode(), runtime.topics.lanes.partitions)
        if request.query.get("local") != "1" and shard not in runtime.held:
            owner = next(url for url, shards in views.owners().items() if shard in shards)
            status, body = await views.fetch(owner, f"/queue/{quote(lane, safe='/')}?local=1")
            if status == 200:
                return self.bytes(body, **canonical_json)
        return self.error(404, "unknown lane")

    def whole(name: str | None) -> Handler:
        async def handler(self: Any, request: Any) -> Any:
            views.service_only(request)
            snapshot = await views.merged()
            return self.bytes(canonical(snapshot if name is None else snapshot[name]), **canonical_json)
        handler.__name__ = name or "snapshot"
        return guarded(handler)

    for path, name in (("/snapshot", None), ("/queue", "queue"), ("/pool", "pool"),
                       ("/cancellations", "cancellations")):
        app.page(path)(whole(name))

    @app.page("/shards/clock")
    @guarded
    async def clock(self: Any, request: Any) -> Any:
        views.service_only(request)
        return self.bytes(canonical({"clock": views.local_clock()}), **canonical_json)

    @app.page("/shards/parts")
    @guarded
    async def parts(self: Any, request: Any) -> Any:
        views.service_only(request)
        at = request.query.get("at", "")
        if not at.isdigit() or len(at) > 20:
            return self.error(400, "at must be a non-negative integer (microseconds since the epoch)")
        return self.bytes(canonical({"parts": views.local_parts(int(at)), "clock": views.local_clock()}),
                          **canonical_json)

    return views
