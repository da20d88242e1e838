"""The loader's compiled reader: a block of canonical lines to `Rows` with no Python object per event.

The pure-Python fast path (`orderbank.replay.decode`) decodes a block with msgspec into a Struct per event and
reads each column off them, most of a load's time. `orderbank_native` (the Rust crate in `native/`, built by
`make` when cargo is found) reads the block's lines straight into columns: it checks what msgspec checks
against the shapes (the keys of each type, the values' types, lengths, ranges and literals, one currency)
and refuses the whole block otherwise; numpy then checks here what it checks on the pure path
(`orderbank.replay.checks`). A block it refuses, or with a value numpy refuses, is read the pure way, so both
builds load a log to the same columns (tests/replay run both). `ORDERBANK_NATIVE=0` leaves it unused.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, TypeVar, get_args

import numpy as np
import numpy.typing as npt

from orderbank.projections.events import EVENT_TYPES, SCHEMA_VERSION, type_name
from orderbank.replay.checks import EVENT_ID_CHARS, VIN_CHARS, event_ids, is_currency, order_ids_ok, vins_ok
from orderbank.replay.orderlog import I32, NEVER
from orderbank.replay.rows import Codes, Names, Rows
from orderbank.replay.shapes import CANCELLED, DELIVERED, DEMANDED, HAS_MONEY, PLACED, CancelReason, Purpose
from orderbank.replay.timestamps import CANONICAL_LENGTH, parse


def _compiled() -> ModuleType | None:
    if os.environ.get("ORDERBANK_NATIVE", "1") == "0":
        return None
    try:
        import orderbank_native
    except ImportError:
        return None
    return orderbank_native


G = TypeVar("G", bound=np.generic)
COMPILED = _compiled()
"""The compiled reader, or None: not built (no cargo when the venv was made) or turned off."""


def _codes(names: list[str], codes: dict[str, int]) -> npt.NDArray[np.int8]:
    """The compiled reader's codes of these names, mapped to the loader's."""
    return np.array([codes[name] for name in names], dtype=np.int8)


_TYPES, _PURPOSES, _REASONS = (COMPILED.TYPES, COMPILED.PURPOSES, COMPILED.REASONS) if COMPILED else ([], [], [])
_KIND = _codes(_TYPES, {type_name(model): code for code, model in enumerate(EVENT_TYPES)})
_PURPOSE = _codes(_PURPOSES, {name: code for code, name in enumerate(get_args(Purpose))})
_REASON = _codes(_REASONS, {name: code for code, name in enumerate(get_args(CancelReason))})
_TIMED = np.zeros(len(EVENT_TYPES), dtype=bool)
_TIMED[[PLACED, DEMANDED, DELIVERED]] = True


class _Found:
    """What the compiled reader read: its columns as numpy arrays over its buffers (no copy)."""

    def __init__(self, found: dict[str, Any]) -> None:
        self.found = found

    def column(self, name: str, dtype: type[G]) -> npt.NDArray[G]:
        return np.frombuffer(self.found[name], dtype=dtype)

    def rows(self, name: str, width: int) -> npt.NDArray[np.uint8]:
        return self.column(name, np.uint8).reshape(-1, width)

    def codes(self, name: str, names: Codes) -> I32:
        """A column of codes into the block's own names (`name + "s"`), as codes into the log's `names`."""
        codes = np.array([names[value] for value in self.found[name + "s"]], dtype=np.int32)
        return codes[self.column(name, np.uint32)]


def read_rows(text: memoryview, lines: int, first: int, names: Names, currency: str | None) -> tuple[Rows, str] | None:
    """The rows of a block of `lines` plain lines (the first numbered `first`), and the currency of its
    amounts; None if the compiled reader is not there, refuses a line, or numpy refuses a value (then the
    block is read the pure way: what it refused decides there, on the exact path if need be)."""
    if COMPILED is None or (read := COMPILED.read_block(text, lines, SCHEMA_VERSION, currency)) is None:
        return None
    found, currency = _Found(read), read["currency"]
    kind = _KIND[found.column("kind", np.uint8)]
    at, ok = parse(found.rows("at", CANONICAL_LENGTH))
    timed = np.flatnonzero(_TIMED[kind])
    when = np.full(lines, NEVER, dtype=np.int64)
    when[timed], when_ok = parse(found.rows("when", CANONICAL_LENGTH))
    event, event_ok = event_ids(found.rows("event", EVENT_ID_CHARS))
    order = found.rows("order", read["order_width"])
    if not (ok.all() and when_ok.all() and event_ok.all() and vins_ok(found.rows("vin", VIN_CHARS)).all()
            and order_ids_ok(order, found.column("order_length", np.int64)).all()
            and (currency is None or is_currency(currency))):
        return None
    money = np.int16(-1 if currency is None else names.currency[currency])
    placed = kind == PLACED
    detail = found.column("detail", np.int8)  # its codes of purposes and reasons, then the loader's
    detail = np.where(kind == DEMANDED, _PURPOSE[detail], np.where(kind == CANCELLED, _REASON[detail], detail))
    model, trim = np.full(lines, -1, dtype=np.int32), np.full(lines, -1, dtype=np.int32)
    model[placed], trim[placed] = found.codes("model", names.model), found.codes("trim", names.trim)
    rows = Rows(line=np.arange(first, first + lines), kind=kind, event=event, order=order.view(np.uint64),
                seq=found.column("seq", np.int64), at=at, when=when, minor=found.column("minor", np.int64),
                currency=np.where(HAS_MONEY[kind], money, np.int16(-1)),
                deposit=found.column("deposit", np.int64), deposit_currency=np.where(placed, money, np.int16(-1)),
                trim_rank=found.column("trim_rank", np.int16), model=model, trim=trim, detail=detail)
    return rows, currency
