"""The HTTP views are safe to expose: read-only, on loopback by default, strict about path parameters, and
their errors say what was wrong without revealing how the worker is built (no tracebacks, paths, classes).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from orderbank.engine.access import lookup_secret
from orderbank.engine.dev.broker import Broker
from orderbank.engine.settings import Settings
from orderbank.engine.stream.views import guarded
from orderbank.replay.synth import generate, preset
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import LOOKUP_KEY, SERVICE_TOKEN, keyed, produce_raw, unique_settings
from tests.support.workers import Worker, caught_up

ORDER_RULE = {"error": "order_id must be 1-64 of A-Z a-z 0-9 _ . : - starting alphanumeric"}
LANE_RULE = {"error": "lane must be a model or model/trim of 1-64 printable characters, not '.' or '..'"}
INTERNALS = (b"Traceback", b'File "', b".py", b"/work/", b"site-packages", b"Error", b"Exception", b"engine.",
             b"faust", b"aiohttp")
LISTEN = "0A"  # TCP state in /proc/net/tcp


@pytest.fixture(scope="module")
def worker(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A caught-up worker holding a small launch, with the settings' default web host."""
    lines = [orjson.dumps(doc) for doc in generate(preset("small", 300), 3)]
    settings = unique_settings(broker.bootstrap)
    running = Worker(settings, tmp_path_factory.mktemp("views")).start()
    try:
        produce_raw(settings, keyed(lines))
        caught_up([running])
        assert_equals_the_fold(running.snapshot(), lines, settings.bank)
        yield running
    finally:
        running.stop()


AS_SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def request(worker: Worker, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One raw request, as the service unless other headers are given: the path is sent exactly as written
    (urllib would refuse or rewrite some)."""
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    try:
        connection.request(method, path, headers=AS_SERVICE if headers is None else headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def listening_hosts(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port` (IPv4 and IPv6), from /proc/net."""
    hosts = set()
    for table, size in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == LISTEN and int(port_hex, 16) == port:
                assert len(address) == size
                hosts.add(address)
    return hosts


def test_the_views_bind_to_loopback_by_default(worker: Worker) -> None:
    assert Settings.from_env({}).web_host == "127.0.0.1" and worker.settings.web_host == "127.0.0.1"
    assert listening_hosts(worker.port) == {"0100007F"}  # 127.0.0.1, little-endian hex; no IPv6 or 0.0.0.0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_views_are_read_only(worker: Worker, method: str) -> None:
    before = worker.get("/snapshot")
    for path in ("/snapshot", "/queue", "/queue/YU7", "/pool", "/cancellations", "/orders/YU7-000001", "/health",
                 "/metrics", "/shards/clock", "/shards/parts?at=0"):
        assert request(worker, method, path)[0] == 405, path
    assert worker.get("/snapshot") == before


@pytest.mark.parametrize(("path", "error"), [
    ("/orders/..%2F..%2Fetc%2Fpasswd", ORDER_RULE),
    ("/orders/%2e%2e", ORDER_RULE),
    ("/orders/" + "A" * 65, ORDER_RULE),
    ("/orders/bad%20id", ORDER_RULE),
    ("/orders/%00x", ORDER_RULE),
    ("/orders/%ff", ORDER_RULE),
    ("/orders/%3Cscript%3E", ORDER_RULE),
    ("/queue/..%2F..%2Fetc", LANE_RULE),
    ("/queue/YU7/..", LANE_RULE),
    ("/queue/" + "x" * 65, LANE_RULE),
    ("/queue/a/b/c", LANE_RULE),
    ("/queue/%00", LANE_RULE),
    ("/shards/parts?at=-1", {"error": "at must be a non-negative integer (microseconds since the epoch)"}),
    ("/shards/parts?at=" + "9" * 21, {"error": "at must be a non-negative integer (microseconds since the epoch)"}),
])
def test_bad_path_parameters_are_a_400_naming_the_rule(worker: Worker, path: str, error: dict[str, str]) -> None:
    status, body = request(worker, "GET", path)
    assert (status, orjson.loads(body)) == (400, error)


def test_errors_reveal_no_internals(worker: Worker) -> None:
    answers = {path: request(worker, method, path) for method, path in [
        ("GET", "/orders/NOPE-1"), ("GET", "/orders/NOPE-1?local=1"), ("GET", "/queue/NOPE"), ("GET", "/nope"),
        ("GET", "/orders/../../etc/passwd"), ("GET", "/table"), ("GET", "/router"), ("GET", "/stats"),
        ("GET", "/orders/%ff"), ("POST", "/snapshot"), ("DELETE", "/orders/YU7-000001")]}
    assert answers["/orders/NOPE-1"] == (404, b'{"error":"unknown order or wrong secret"}')
    assert answers["/queue/NOPE"] == (404, b'{"error":"unknown lane"}')
    for path, (status, body) in answers.items():
        assert status in (400, 404, 405), path
        assert not [word for word in INTERNALS if word in body], (path, body)


def test_an_unexpected_failure_is_a_bare_500_with_the_details_only_in_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    class Page:  # the two things a guarded view uses of Faust's View
        def error(self, status: int, message: str) -> tuple[int, bytes]:
            return status, orjson.dumps({"error": message})

    class Request:
        path = "/snapshot"

    async def broken(self: Any, request: Any) -> Any:
        raise KeyError("/work/main/engine/secret_state.py holds order YU7-001")

    async def view() -> Any:
        return await guarded(broken)(Page(), Request())

    caplog.set_level(logging.ERROR)
    assert asyncio.run(view()) == (500, b'{"error":"internal error"}')
    assert "secret_state.py" in caplog.text and "view /snapshot failed" in caplog.text


WHOLE_BANK = ("/snapshot", "/queue", "/queue/YU7", "/pool", "/cancellations", "/shards/clock", "/shards/parts?at=0")
UNKNOWN = (404, b'{"error":"unknown order or wrong secret"}')


@pytest.mark.parametrize("path", WHOLE_BANK)
def test_whole_bank_views_need_the_service_token(worker: Worker, path: str) -> None:
    """Found on 48cf5fe: any caller could list every open order with its position and ETA."""
    needs = b'{"error":"this view needs the service token (Authorization: Bearer ...)"}'
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": SERVICE_TOKEN},
                    {"Authorization": f"Basic {SERVICE_TOKEN}"}, {"X-Orderbank-Secret": SERVICE_TOKEN}):
        assert request(worker, "GET", path, headers) == (401, needs), headers
    assert request(worker, "GET", path)[0] == 200


def test_an_order_answers_to_its_own_secret_only(worker: Worker) -> None:
    """Found on 48cf5fe: /orders/YU7-001 ... YU7-400 all answered with deposit, payments and refunds."""
    order, other = "YU7-000001", "YU7-000002"
    right = lookup_secret(LOOKUP_KEY, order)
    status, body = request(worker, "GET", f"/orders/{order}?secret={right}", {})
    assert status == 200 and orjson.loads(body)["order_id"] == order
    assert request(worker, "GET", f"/orders/{order}", {"X-Orderbank-Secret": right}) == (status, body)
    assert request(worker, "GET", f"/orders/{order}", AS_SERVICE) == (status, body)
    for path in (f"/orders/{order}", f"/orders/{order}?secret=", f"/orders/{order}?secret={right.upper()}",
                 f"/orders/{order}?secret={right[:-1]}", f"/orders/{other}?secret={right}",
                 f"/orders/{order}?secret={lookup_secret('another-key-0123456789', order)}",
                 f"/orders/{order}?secret={'x' * 5000}"):
        assert request(worker, "GET", path, {}) == UNKNOWN, path
    # an order that does not exist looks exactly like a wrong secret, even with a well-formed one
    assert request(worker, "GET", f"/orders/NOPE-1?secret={lookup_secret(LOOKUP_KEY, 'NOPE-1')}", {}) == UNKNOWN


def test_health_and_metrics_stay_open(worker: Worker) -> None:
    assert request(worker, "GET", "/health", {})[0] == 200
    assert request(worker, "GET", "/metrics", {})[0] == 200
