"""The pages over HTTP, served from a folded log: figures equal the fold's, credentials work as documented, and
bad input gets the right status and message with nothing leaked."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from orderbank.engine.access import Access, lookup_secret
from orderbank.engine.web.server import LogSource, application
from orderbank.engine.web.site import NotReady
from orderbank.projections.bank import BankSettings
from orderbank.projections.orders import micros
from orderbank.projections.policies import parse_policy
from orderbank.projections.standing import order_view
from orderbank.replay.audit import Audit, fold_for_pages
from orderbank.replay.source import FileSource
from tests.engine.web.expected import dashboard_figures, order_figures
from tests.engine.web.launches import events, launch
from tests.engine.web.served import shown

KEY, TOKEN = "page-test-lookup-key-0123", "page-test-service-token-0123"
INTERNALS = ("Traceback", 'File "', ".py", "/work/", "site-packages", "Error", "Exception", "aiohttp", "orderbank.")
SECURITY = {"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"}


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Audit:
    path = tmp_path_factory.mktemp("log") / "launch.jsonl"
    path.write_bytes(b"\n".join(launch()) + b"\n")
    # a third of the way: a long queue, payments demanded, cancellations
    until = micros(events()[len(events()) // 3].occurred_at)
    return fold_for_pages(FileSource(path), BankSettings(policy=parse_policy("bounded-overtake:k=300")),
                          until_us=until)


def source_of(audit: Audit, open_on_loopback: bool = True, token: str | None = TOKEN,
              report: Path | None = None) -> LogSource:
    return LogSource(audit, "launch.jsonl", Access(KEY, token), open_on_loopback, report)


@asynccontextmanager
async def client(source: LogSource) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(application(source))) as c:
        yield c


def an_open_order(audit: Audit) -> str:
    lane = max(audit.bank.queue.lanes.values(), key=lambda lane: len(lane.open))
    return str(lane.open[len(lane.open) // 2][-1])


async def test_the_dashboard_shows_the_folds_figures(audit: Audit) -> None:
    async with client(source_of(audit)) as c:
        response = await c.get("/")
        html = await response.text()
    assert response.status == 200 and set(response.headers) >= SECURITY
    assert {key: shown(html, key) for key in dashboard_figures(audit.bank)} == dashboard_figures(audit.bank)
    assert html.count("<svg") >= 5 and "<script>" not in html


async def test_an_order_page_shows_the_orders_figures_and_why(audit: Audit) -> None:
    order_id = an_open_order(audit)
    view = order_view(audit.bank, order_id)
    async with client(source_of(audit)) as c:
        response = await c.get(f"/orders/{order_id}", params={"secret": lookup_secret(KEY, order_id)})
        html = await response.text()
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    figures = order_figures(audit.bank, order_id)
    assert {key: shown(html, key) for key in figures} == figures
    assert "300 orders placed after it" in html  # the rule, with the policy's k
    assert f"{view['position'] - 1:,} orders are ahead of yours" in html
    assert "Order placed, deposit CNY 5,000" in html
    others = set(audit.bank.orders) - {order_id}
    assert not [o for o in others if f">{o}<" in html or f" {o} " in html], "another customer's order id shown"
    assert audit.bank.orders[order_id].customer_id not in html


@pytest.mark.parametrize("query", [{}, {"secret": ""}, {"secret": "x" * 26}, {"secret": "wrong"}])
async def test_a_wrong_secret_and_an_unknown_order_get_the_same_answer(audit: Audit, query: dict[str, str]) -> None:
    order_id = an_open_order(audit)
    async with client(source_of(audit)) as c:
        wrong = await c.get(f"/orders/{order_id}", params=query)
        unknown = await c.get("/orders/NOPE-1", params={"secret": lookup_secret(KEY, "NOPE-1")})
        other = await c.get("/orders/NOPE-1", params={"secret": lookup_secret(KEY, order_id)})
        bodies = [await r.text() for r in (wrong, unknown, other)]
    assert [r.status for r in (wrong, unknown, other)] == [404] * 3
    assert bodies[0] == bodies[1] == bodies[2] and "We could not find this order" in bodies[0]
    assert order_id not in bodies[0] and "NOPE" not in bodies[0]


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/orders/bad%20id", 400, "This is not an order number"),
    ("/orders/%3Cscript%3E", 400, "This is not an order number"),
    ("/orders/" + "A" * 65, 400, "This is not an order number"),
    ("/orders/YU7-00001?secret=" + "x" * 5000, 414, "This address is too long"),
    ("/orders/YU7-00001/live?secret=" + "x" * 5000, 414, "This address is too long"),
    ("/nope", 404, "Page not found"),
    ("/static/../pyproject.toml", 404, "Page not found"),
    ("/static/secret.txt", 404, "Page not found"),
    ("/report/", 404, "No replay report here"),
])
async def test_bad_input_gets_its_status_and_a_message_without_internals(audit: Audit, path: str, status: int,
                                                                        says: str) -> None:
    async with client(source_of(audit)) as c:
        response = await c.get(path)
        body = await response.text()
    assert (response.status, says in body) == (status, True), body
    assert not [word for word in INTERNALS if word in body] and "<script>alert" not in body
    assert set(response.headers) >= SECURITY


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_the_pages_are_read_only(audit: Audit, method: str) -> None:
    async with client(source_of(audit)) as c:
        for path in ("/", "/policy", f"/orders/{an_open_order(audit)}", "/events"):
            response = await c.request(method, path)
            assert response.status == 405, path


async def test_the_policy_page_shows_the_policy_with_its_parameters_and_the_report(audit: Audit,
                                                                                  tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html><style>p{}</style><p>report</p></html>")
    async with client(source_of(audit, report=tmp_path)) as c:
        html = await (await c.get("/policy")).text()
        report = await c.get("/report/")
        body = await report.text()
    assert shown(html, "policy") == "bounded-overtake:k=300"
    assert re.search(r"<code>k</code></th><td class=\"num\">300<", html) and "top_rank" in html
    assert 'href="/report/"' in html
    assert report.status == 200 and "<p>report</p>" in body
    assert "'unsafe-inline'" in report.headers["Content-Security-Policy"]  # the report's own inline style


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()}


async def test_beyond_loopback_the_dashboard_needs_the_service_token(audit: Audit) -> None:
    async with client(source_of(audit, open_on_loopback=False)) as c:
        for headers in ({}, basic("wrong-token-0123456789"), {"Authorization": "Bearer wrong"},
                        {"Authorization": "Basic !!!"}, {"Authorization": f"Basic {TOKEN}"}):
            for path in ("/", "/events"):
                refused = await c.get(path, headers=headers)
                assert refused.status == 401, (path, headers)
                assert refused.headers["WWW-Authenticate"].startswith("Basic ")
        assert (await c.get("/", headers=basic(TOKEN))).status == 200
        assert (await c.get("/", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
        assert (await c.get("/policy")).status == 200  # the policy is public
    async with client(source_of(audit, open_on_loopback=False, token=None)) as c:
        off = await c.get("/", headers=basic(TOKEN))
        assert off.status == 403 and "ORDERBANK_WEB_SERVICE_TOKEN" in await off.text()


async def test_live_pages_stream_their_parts(audit: Audit) -> None:
    order_id = an_open_order(audit)
    async with client(source_of(audit)) as c:
        for path, parts in (("/events", ("freshness", "lanes", "pool", "cancellations", "health")),
                            (f"/orders/{order_id}/live?secret={lookup_secret(KEY, order_id)}",
                             ("as_of", "standing", "money", "history"))):
            response = await c.get(path)
            assert response.headers["Content-Type"] == "text/event-stream"
            assert await response.content.readline() == b"retry: 3000\n"
            await response.content.readline()
            assert await response.content.readline() == b"event: update\n"
            data = (await response.content.readline()).decode()
            assert all(f'"{part}":' in data for part in parts), data[:200]
            response.close()
        refused = await c.get(f"/orders/{order_id}/live?secret=wrong")
        assert refused.status == 404


async def test_an_unexpected_failure_is_a_bare_500_with_the_details_only_in_the_log(
        audit: Audit, caplog: pytest.LogCaptureFixture) -> None:
    source = source_of(audit)

    async def broken() -> Any:
        raise KeyError("/work/main/engine/secret_state.py holds order YU7-001")

    source.dashboard = broken  # type: ignore[method-assign]
    caplog.set_level(logging.ERROR)
    async with client(source) as c:
        response = await c.get("/")
        body = await response.text()
    assert response.status == 500 and "Something went wrong" in body
    assert "secret_state" not in body and "secret_state.py" in caplog.text


async def test_a_log_with_no_events_still_has_its_pages(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    async with client(source_of(fold_for_pages(FileSource(empty)))) as c:
        dashboard, policy = await c.get("/"), await c.get("/policy")
        html = await dashboard.text()
        unknown = await c.get("/orders/YU7-1", params={"secret": lookup_secret(KEY, "YU7-1")})
    assert (dashboard.status, policy.status, unknown.status) == (200, 200, 404)
    assert "no events yet" in html and "No orders yet." in html


async def test_figures_being_gathered_are_a_503_to_retry(audit: Audit) -> None:
    source = source_of(audit)

    async def moving() -> Any:
        raise NotReady("shards are being assigned")

    source.dashboard = moving  # type: ignore[method-assign]
    async with client(source) as c:
        response = await c.get("/")
        body = await response.text()
    assert (response.status, response.headers["Retry-After"]) == (503, "5") and "being gathered" in body
