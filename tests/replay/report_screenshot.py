"""The replay report in headless Chromium at a laptop's width: what overflows sideways, and a screenshot.
`python -m tests.replay.report_screenshot` runs what `make demo` runs (the yu7 launch, every policy, seed 1) and
writes docs/report.png, the README's picture of the report, failing if anything on the page overflows."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rich.console import Console

from orderbank.replay import job
from orderbank.replay.compare import ReplaySettings
from tests import REPO_ROOT
from tests.engine.web.browser import Browser, chromium, full_page_screenshot

WIDTH = 1280
OVERFLOWS = """
const limit = document.documentElement.clientWidth, found = [];
const name = (e) => e.tagName.toLowerCase() + (e.className && e.className.baseVal === undefined && e.className
    ? '.' + e.className : '') + ' "' + (e.textContent || '').trim().slice(0, 40) + '"';
if (document.documentElement.scrollWidth > limit) {
  found.push('the page is ' + document.documentElement.scrollWidth + 'px wide');
}
for (const e of document.body.querySelectorAll('*')) {
  const box = e.getBoundingClientRect();
  if (box.width > limit || box.right > limit + 0.5 || box.left < -0.5) {
    found.push(name(e) + ' spans ' + Math.round(box.left) + '..' + Math.round(box.right) + 'px');
  }
}
for (const text of document.querySelectorAll('svg text')) {
  const chart = text.ownerSVGElement.getBoundingClientRect(), box = text.getBoundingClientRect();
  if (box.left < chart.left - 0.5 || box.right > chart.right + 0.5 || box.top < chart.top - 0.5
      || box.bottom > chart.bottom + 0.5) {
    found.push(name(text) + ' runs out of its chart');
  }
}
return found;
"""


def overflows(browser: Browser) -> list[str]:
    """Every element wider than the window or reaching past its edges, and every chart text that runs out of its
    chart (the chart itself would clip it)."""
    found: list[str] = browser.execute_script(OVERFLOWS)
    return found


def shoot(index: Path, png: Path) -> list[str]:
    """Open the report at WIDTH pixels, screenshot the whole page into `png`; what overflows."""
    with chromium((WIDTH, 900)) as browser:
        browser.get(index.resolve().as_uri())
        found = overflows(browser)
        full_page_screenshot(browser, png, WIDTH)
    return found


def main() -> None:
    quiet = Console(file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        job.demo(1, ReplaySettings(), report, quiet, quiet)
        found = shoot(report / "index.html", REPO_ROOT / "docs" / "report.png")
    assert not found, found
    print(REPO_ROOT / "docs" / "report.png")


if __name__ == "__main__":
    main()
