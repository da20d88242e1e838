"""The system's Chromium, headless, driven by Selenium: Debian's `chromium` and `chromium-driver` (the Makefile's
`browser` step installs them). Never skipped: without them the tests fail saying how to install them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
PHONE = (390, 844)
DESKTOP = (1280, 900)
T = TypeVar("T")
Browser = webdriver.Chrome


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    assert not missing, f"the page tests need {', '.join(missing)}: run `{INSTALL}` (as root)"


@contextmanager
def chromium(size: tuple[int, int] = DESKTOP) -> Iterator[Browser]:
    """A fresh headless Chromium with its own profile, talking to nothing but the pages under test."""
    require_browser()
    profile = tempfile.mkdtemp(prefix="orderbank-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--force-device-scale-factor=1",
                 f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # A headless window is at least 500 pixels wide: a phone's width is emulated.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": size[0], "height": size[1],
                                                                  "deviceScaleFactor": 1, "mobile": size == PHONE})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def text_of(driver: WebDriver, test_id: str) -> str:
    """The text of the element with this data-testid, read in one step (a live update may replace it at any
    moment, which would leave a found element stale before its text is read)."""
    text = driver.execute_script("const e = document.querySelector(arguments[0]); return e && e.textContent",
                                 f'[data-testid="{test_id}"]')
    assert text is not None, f"no {test_id} on {driver.current_url}"
    return str(text).strip()


def wait_for(driver: WebDriver, probe: Callable[[WebDriver], T], timeout: float, what: str) -> T:
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        probe, f"timed out waiting for {what}")


def full_page_screenshot(driver: WebDriver, path: Path, width: int) -> None:
    """The whole page at `width` CSS pixels."""
    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 12_000)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                                  "deviceScaleFactor": 1, "mobile": width < 500})
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
