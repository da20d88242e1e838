"""The pages of a folded log in a real browser (headless Chromium): what people see equals the fold, live parts
run under the pages' content security policy, bad links read right, and a phone's width fits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By

from orderbank.engine.access import lookup_secret
from orderbank.projections.bank import BankSettings, fold
from orderbank.projections.orders import from_micros, micros
from orderbank.projections.policies import parse_policy
from tests.engine.web.browser import PHONE, Browser, chromium, text_of, wait_for
from tests.engine.web.expected import dashboard_figures, order_figures
from tests.engine.web.launches import events, launch
from tests.engine.web.served import Served, serving

KEY = "browser-test-lookup-key-0123"
POLICY = "bounded-overtake:k=300"


@pytest.fixture(scope="module")
def until_us() -> int:
    return micros(events()[len(events()) // 3].occurred_at)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, until_us: int) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("serve") / "launch.jsonl"
    log.write_bytes(b"\n".join(launch()) + b"\n")
    until = from_micros(until_us).strftime("%Y-%m-%dT%H:%M:%S.%f")
    with serving(log, "--policy", POLICY, "--until", until, env={"ORDERBANK_WEB_LOOKUP_KEY": KEY}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as driver:
        yield driver


def problems(browser: Browser) -> list[str]:
    """The console's errors: a script or style the content security policy blocked, a failed request."""
    entries: list[dict[str, str]] = browser.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


def live(browser: Browser) -> None:
    wait_for(browser, lambda b: "Live" in b.find_element(By.ID, "live-status").text, 10, "the live stream to open")


def test_the_dashboard_in_a_browser_shows_the_folds_figures(served: Served, browser: Browser, until_us: int) -> None:
    bank = fold((e for e in events() if micros(e.occurred_at) <= until_us),
                BankSettings(policy=parse_policy(POLICY)))
    browser.get(served.dashboard)
    live(browser)
    assert {key: text_of(browser, key) for key in dashboard_figures(bank)} == dashboard_figures(bank)
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")) >= 5
    assert "computed" in browser.find_element(By.CSS_SELECTOR, "[data-age]").text
    assert problems(browser) == []


def test_an_order_page_in_a_browser_shows_the_orders_figures(served: Served, browser: Browser,
                                                             until_us: int) -> None:
    bank = fold((e for e in events() if micros(e.occurred_at) <= until_us),
                BankSettings(policy=parse_policy(POLICY)))
    order_id = urlsplit(served.order).path.rsplit("/", 1)[1]
    assert parse_qs(urlsplit(served.order).query)["secret"] == [lookup_secret(KEY, order_id)]
    browser.get(served.order)
    live(browser)
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Your order {order_id}"
    assert {key: text_of(browser, key) for key in order_figures(bank, order_id)} == order_figures(bank, order_id)
    assert "orders placed after it" in browser.find_element(By.CSS_SELECTOR, "ul.why").text
    assert browser.find_element(By.CSS_SELECTOR, "figure.chart figcaption").text.startswith("Position:")
    assert problems(browser) == []


@pytest.mark.parametrize(("path", "heading"), [
    ("/orders/YU7-00001?secret=wrong", "We could not find this order"),
    ("/orders/NOPE-1?secret=" + "a" * 26, "We could not find this order"),
    ("/orders/YU7-00001", "We could not find this order"),
    ("/orders/bad%20id", "This is not an order number"),
    ("/orders/YU7-00001?secret=" + "x" * 3000, "This address is too long"),
    ("/nowhere", "Page not found"),
])
def test_bad_links_read_right_in_a_browser(served: Served, browser: Browser, path: str, heading: str) -> None:
    browser.get(served.dashboard.rstrip("/") + path)
    assert browser.find_element(By.TAG_NAME, "h1").text == heading
    assert "YU7-00001" not in browser.find_element(By.TAG_NAME, "main").text


def test_the_pages_fit_a_phone(served: Served) -> None:
    with chromium(PHONE) as phone:
        for url in (served.dashboard, served.order, served.policy):
            phone.get(url)
            width = phone.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE[0], f"{url} is {width}px wide on a {PHONE[0]}px phone"
            size = phone.execute_script("return parseFloat(getComputedStyle(document.body).fontSize)")
            assert size >= 16
            assert problems(phone) == []


def test_the_pages_have_the_landmarks_and_labels_a_screen_reader_needs(served: Served, browser: Browser) -> None:
    for url in (served.dashboard, served.order, served.policy):
        browser.get(url)
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert len(browser.find_elements(By.TAG_NAME, "main")) == 1
        assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
        for section in browser.find_elements(By.CSS_SELECTOR, "section[aria-labelledby]"):
            label = section.get_attribute("aria-labelledby")
            assert browser.find_element(By.ID, str(label)).tag_name == "h2"
        for figure in browser.find_elements(By.CSS_SELECTOR, "figure.chart"):
            assert figure.find_element(By.TAG_NAME, "svg").get_attribute("aria-hidden") == "true"
            assert figure.find_element(By.TAG_NAME, "figcaption").text


def test_screenshots_of_both_pages(served: Served, tmp_path: Path) -> None:
    from tests.engine.web.screenshots import shoot

    written = shoot(served, tmp_path)
    assert [p.name for p in written] == ["dashboard.png", "order-page.png", "order-page-phone.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
