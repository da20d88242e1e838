"""The ingest process logs at the level its worker prints at (orderbank.engine.stream.ingest_process)."""

from __future__ import annotations

import logging

import pytest
from faust.utils.terminal import Spinner, SpinnerHandler

from orderbank.engine.stream.ingest_process import console_level


@pytest.mark.parametrize(("asked", "spinning"), [(logging.WARNING, True), (logging.ERROR, True), (logging.INFO, False),
                                                 (logging.DEBUG, False)])
def test_the_ingest_prints_what_a_faust_worker_prints(monkeypatch: pytest.MonkeyPatch, asked: int,
                                                      spinning: bool) -> None:
    """As `faust -A ... worker -l LEVEL` leaves the root logger: at WARN and above, its terminal spinner turns on
    every record, so the root is at DEBUG and the level asked for is its console handler's."""
    console = logging.StreamHandler()
    console.setLevel(asked)
    handlers: list[logging.Handler] = [console]
    if spinning:
        handlers.append(SpinnerHandler(Spinner(), level=logging.DEBUG))
    monkeypatch.setattr(logging.root, "handlers", handlers)
    monkeypatch.setattr(logging.root, "level", logging.DEBUG if spinning else asked)
    assert console_level() == asked


def test_without_handlers_the_ingest_takes_the_root_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.INFO)
    assert console_level() == logging.INFO
