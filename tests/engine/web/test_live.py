"""The pages on a live worker, in a real browser: events produced to Kafka move an order's position and the pool
on open pages within seconds, without a reload."""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from orderbank.engine.access import lookup_secret
from orderbank.engine.dev.broker import Broker
from orderbank.engine.web import format as fmt
from orderbank.projections.bank import OrderBank
from orderbank.projections.orders import from_micros
from orderbank.replay.synth import generate, preset
from tests.engine.web.browser import chromium, text_of, wait_for
from tests.engine.web.expected import dashboard_figures
from tests.engine.web.served import shown
from tests.support.equality import fold_lines
from tests.support.topics import LOOKUP_KEY, keyed, produce_raw, unique_settings
from tests.support.workers import Worker, caught_up, wait_until

pytestmark = pytest.mark.broker
SECONDS = 10  # the issue asks for "within a few seconds"; the worker publishes every 0.5 s in tests


def event(bank: OrderBank, order_id: str, kind: str, **facts: object) -> bytes:
    order = bank.orders[order_id]
    when = (from_micros(bank.now_us) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": kind, "event_id": str(uuid.uuid4()), "order_id": order_id,
                         "seq": order.last_seq + 1, "occurred_at": when, "schema_version": 2,
                         **{k: (when if v == "now" else v) for k, v in facts.items()}})


@pytest.fixture
def launch() -> list[bytes]:
    return [orjson.dumps(doc) for doc in generate(preset("small", 300), 3)]


@pytest.fixture
def worker(broker: Broker, tmp_path: Path, launch: list[bytes]) -> Iterator[Worker]:
    running = Worker(unique_settings(broker.bootstrap), tmp_path).start()
    try:
        produce_raw(running.settings, keyed(launch))
        caught_up([running])
        yield running
    finally:
        running.stop()


def marked(browser: WebDriver) -> None:
    """A mark that a reload would wipe."""
    browser.execute_script("window.orderbankMark = 42")


def still_marked(browser: WebDriver) -> bool:
    return bool(browser.execute_script("return window.orderbankMark === 42"))


def test_open_pages_follow_a_payment_and_a_delivery_ahead(worker: Worker, launch: list[bytes]) -> None:
    bank = fold_lines(launch)
    sequence = list(bank.queue.lanes["YU7"].order_ids())
    me, ahead = sequence[len(sequence) // 2], sequence[0]
    position = bank.position_of(me)
    assert position is not None
    held = bank.snapshot()["pool"]["totals"]["CNY"]["held"]
    with chromium() as dashboard, chromium() as page:
        dashboard.get(worker.url + "/")
        page.get(f"{worker.url}/orders/{me}?secret={lookup_secret(LOOKUP_KEY, me)}")
        assert text_of(page, "position") == fmt.count(position.position)
        assert text_of(dashboard, "pool-held") == fmt.money(held, "CNY")
        assert text_of(dashboard, "open-YU7") == fmt.count(len(sequence))
        for browser in (dashboard, page):
            wait_for(browser, lambda b: "Live" in text_of_status(b), SECONDS, "the live stream to open")
            marked(browser)

        news = [event(bank, ahead, "VehicleDelivered", delivered_at="now", vin="LXMCAR00000099999"),
                event(bank, me, "PaymentReceived", amount={"minor": 1_000_000, "currency": "CNY"})]
        after = fold_lines([*launch, *news])
        produce_raw(worker.settings, keyed(news))
        moved = after.position_of(me)
        assert moved is not None and moved.position == position.position - 1
        new_held = after.snapshot()["pool"]["totals"]["CNY"]["held"]
        assert new_held != held

        wait_for(page, lambda b: text_of(b, "position") == fmt.count(moved.position), SECONDS,
                 "the order page to show its new position")
        wait_for(page, lambda b: text_of(b, "paid") == fmt.money(after.orders[me].paid, "CNY"), SECONDS,
                 "the order page to show the payment")
        wait_for(dashboard, lambda b: text_of(b, "pool-held") == fmt.money(new_held, "CNY"), SECONDS,
                 "the dashboard's pool to change")
        assert text_of(dashboard, "open-YU7") == fmt.count(len(sequence) - 1)
        assert still_marked(page) and still_marked(dashboard), "a page was reloaded"
        assert f"Payments received so far: {fmt.money(after.orders[me].received, 'CNY')}" in page.page_source


def shards_of(worker: Worker) -> dict[str, Any]:
    return dict((worker.health() or {}).get("shards", {}))


def text_of_status(browser: WebDriver) -> str:
    return str(browser.execute_script("return document.getElementById('live-status').textContent"))


def test_json_clients_keep_the_json_view(worker: Worker) -> None:
    status, body = worker.get("/orders/YU7-000001", {"Accept": "application/json",
                                                  "X-Orderbank-Secret": lookup_secret(LOOKUP_KEY, "YU7-000001")})
    assert status == 200 and orjson.loads(body)["order_id"] == "YU7-000001"
    status, body = worker.get("/orders/YU7-000001", {"Accept": "text/html", "X-Orderbank-Secret": "wrong"})
    assert status == 404 and b"We could not find this order" in body and b"<html" in body


def test_two_workers_serve_the_whole_bank_and_route_an_order_to_its_owner(broker: Broker, tmp_path: Path,
                                                                         launch: list[bytes]) -> None:
    settings = unique_settings(broker.bootstrap, lane_by="model_trim")  # three lanes, on shards 0, 1 and 2
    a, b = Worker(settings, tmp_path, "a").start(), Worker(settings, tmp_path, "b").start()
    try:
        wait_until(lambda: len(shards_of(a)) == len(shards_of(b)) == 2, 180, "the shards to be split")
        produce_raw(settings, keyed(launch))
        caught_up([a, b])
        expected = fold_lines(launch, settings.bank)
        browser_asks = {"Accept": "text/html,application/xhtml+xml"}
        for worker in (a, b):
            status, body = worker.get("/", browser_asks)
            html = body.decode()
            assert status == 200
            assert {key: shown(html, key) for key in dashboard_figures(expected)} == dashboard_figures(expected)
            assert html.count('<th scope="row">a</th>') == html.count('<th scope="row">b</th>') == 1  # both workers
        routed = 0
        for owner, other in ((a, b), (b, a)):
            lanes = sorted({lane for shard in shards_of(owner).values() for lane in shard["lanes"]})
            for order_id in [o for lane in lanes for o in list(expected.queue.lanes[lane].order_ids())[:2]]:
                status, body = other.get(f"/orders/{order_id}", {**browser_asks,
                                                                 "X-Orderbank-Secret": lookup_secret(LOOKUP_KEY,
                                                                                                     order_id)})
                position = expected.position_of(order_id)
                assert status == 200 and position is not None
                assert shown(body.decode(), "position") == fmt.count(position.position)
                routed += 1
        assert routed >= 6  # every lane's first orders, each asked of the worker that does not hold it
    finally:
        a.stop()
        b.stop()


def test_a_worker_with_live_pages_open_stops_promptly(worker: Worker) -> None:
    """An open live page must not hold the worker's web server (and so its stop) open."""
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
    connection.request("GET", "/events")
    response = connection.getresponse()
    assert response.status == 200 and response.readline() == b"retry: 3000\n"
    assert response.readline() == b"\n" and response.readline() == b"event: update\n"
    process, started = worker.proc, time.monotonic()
    assert process is not None
    worker.stop()
    assert process.returncode == 0 and time.monotonic() - started < 20, process.returncode
    connection.close()
