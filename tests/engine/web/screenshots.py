"""Screenshots of the pages for the docs: `python -m tests.engine.web.screenshots` synthesises the yu7 launch,
serves it under bounded overtaking as it stood four months in (what the seed's customers saw) and writes
docs/dashboard.png, docs/order-page.png and docs/order-page-phone.png."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By

from orderbank.engine.access import lookup_secret
from orderbank.replay.logfile import write_docs
from orderbank.replay.synth import generate, preset
from tests import REPO_ROOT
from tests.engine.web.browser import DESKTOP, PHONE, chromium, full_page_screenshot, wait_for
from tests.engine.web.served import Served, serving

FOUR_MONTHS_IN = "2025-10-26"
POLICY = "bounded-overtake:k=1000"


def shoot(served: Served, directory: Path, order_url: str | None = None) -> list[Path]:
    order = order_url or served.order
    shots = [(served.dashboard, "dashboard.png", DESKTOP), (order, "order-page.png", DESKTOP),
             (order, "order-page-phone.png", PHONE)]
    written = []
    for url, name, size in shots:
        with chromium(size) as browser:
            browser.get(url)
            wait_for(browser, lambda b: "Live" in b.find_element(By.ID, "live-status").text, 30, "the live stream")
            time.sleep(0.5)  # the first update's layout settles
            full_page_screenshot(browser, directory / name, size[0])
        written.append(directory / name)
    return written


def telling_order(docs: list[dict[str, Any]]) -> str:
    """An order still open four months in, asked for its balance and with a payment made: a page with a history
    to tell. The middle one of those."""
    asked: set[str] = set()
    paid: set[str] = set()
    closed: set[str] = set()
    for doc in docs:
        if doc["occurred_at"] >= FOUR_MONTHS_IN:
            continue
        kind = doc["type"]
        if kind in ("PaymentDemanded", "PaymentReceived", "VehicleDelivered", "OrderCancelled"):
            {"PaymentDemanded": asked, "PaymentReceived": paid}.get(kind, closed).add(doc["order_id"])
    telling = sorted((asked & paid) - closed)
    return str(telling[len(telling) // 2])


def main() -> None:
    key = "docs-screenshots-lookup-key"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "yu7-seed1.jsonl"
        docs = list(generate(preset("yu7"), 1))
        write_docs(log, docs)
        order_id = telling_order(docs)
        with serving(log, "--until", FOUR_MONTHS_IN, "--policy", POLICY, timeout=600,
                     env={"ORDERBANK_WEB_LOOKUP_KEY": key}) as served:
            url = f"{served.dashboard}orders/{order_id}?secret={lookup_secret(key, order_id)}"
            for path in shoot(served, REPO_ROOT / "docs", url):
                print(path)


if __name__ == "__main__":
    main()
