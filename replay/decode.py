"""A block of log text to `Rows`: msgspec for the events' shapes, numpy for their values, the bank's
decoder for every line that fails either.

`scan` looks with numpy at a block's lines (in the reader thread). When its lines are plainly one JSON
object each, `BlockReader` has the compiled reader read the whole block into rows if it is built and takes
it (`orderbank.replay.native`), or else decodes the block with msgspec against the canonical shapes
(`orderbank.replay.shapes`), and `decode_block` then reads each column in one pass and checks with numpy
(`orderbank.replay.checks`) what the shapes leave open: UUIDs (read into a digest as they are checked),
timestamps, order ids, currency codes, VINs. A block that was not read in one go is decoded
`CHUNK_LINES` lines a call, and a line a call in the chunks that fail, still with msgspec. A line
that fails any check goes through `orderbank.projections.codec.decode` (pydantic): its rejection is kept with its
line number, or its event joins the columns in canonical shape (`shapes.shape_of`). So a line is
decoded to the same values, or rejected for the same reason, whichever path it takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, get_args

import msgspec
import numpy as np
import numpy.typing as npt

from orderbank.projections.bank import Counted
from orderbank.projections.codec import MAX_EVENT_BYTES, Rejection, decode
from orderbank.projections.events import ProductionPlanned
from orderbank.replay.checks import (
    EVENT_ID_CHARS,
    VIN_CHARS,
    as_rows,
    event_ids,
    is_currency,
    order_ids_ok,
    vins_ok,
)
from orderbank.replay.joined import Joined
from orderbank.replay.native import read_rows
from orderbank.replay.orderlog import I64, NEVER, Flags
from orderbank.replay.rows import I8, I16, Names, Rows, Words
from orderbank.replay.shapes import (
    CANCELLED,
    DECODER,
    DELIVERED,
    DEMANDED,
    HAS_MONEY,
    PLACED,
    CancelReason,
    Purpose,
    Shape,
    decoder_for,
    shape_of,
)
from orderbank.replay.timestamps import as_chars, parse

_KIND, _SEQ, _MINOR = attrgetter("kind"), attrgetter("seq"), attrgetter("money.minor")
_AT, _WHEN, _ID, _ORDER = attrgetter("occurred_at"), attrgetter("when"), attrgetter("event_id"), attrgetter("order_id")
_CURRENCY = attrgetter("money.currency")
_AT_CURRENCY = re.compile(r"\.currency`$")
CHUNK_LINES = 256
"""Lines decoded in one call when a block's lines cannot all be (a chunk that fails is decoded a line at a time)."""
Tries = list[tuple[msgspec.json.Decoder[Any], str | None]]
"""Decoders to try in turn, each with the one currency it makes sure of (None: any)."""
_PURPOSE = {name: code for code, name in enumerate(get_args(Purpose))}
_REASON = {name: code for code, name in enumerate(get_args(CancelReason))}


class ExactPath:
    """Lines decoded by `orderbank.projections.codec`: which, the rejections with their line numbers (a
    line rejected before, the same bytes, is a duplicate as the bank counts it), and the production
    plans (which always come this way) by line number."""

    def __init__(self) -> None:
        self.lines: set[int] = set()
        self.rejections: list[tuple[int, Rejection]] = []
        self.counted = Counted()
        self.duplicates = 0
        self.plans: dict[int, ProductionPlanned] = {}

    def shape(self, number: int, line: bytes) -> Shape | None:
        self.lines.add(number)
        event = decode(line)
        if isinstance(event, Rejection):
            if self.counted.first(line, event.reason):
                self.rejections.append((number, event))
            else:
                self.duplicates += 1
            return None
        if event.type == "ProductionPlanned":
            self.plans[number] = event
        return shape_of(event)


@dataclass(frozen=True)
class Block:
    """Whole lines of the log's text; and how many, when each is plainly one JSON object (it starts
    with `{`, ends with `}` and fits MAX_EVENT_BYTES), so no object can span lines or share one."""

    text: memoryview
    plain_lines: int | None
    ends: npt.NDArray[np.intp]
    """Where each line's newline is in `text`."""


def scan(text: memoryview) -> Block:
    """Look at a block's lines (numpy only: it can run in a reader thread while another block decodes)."""
    chars = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(chars == ord("\n"))
    starts = np.concatenate(([0], ends[:-1] + 1))
    plain = (np.all(chars[starts] == ord("{")) and np.all(chars[ends - 1] == ord("}"))
             and np.all(ends - starts <= MAX_EVENT_BYTES))
    return Block(text, len(ends) if plain else None, ends)


_ANY: Tries = [(DECODER, None)]


class BlockReader:
    """Decodes a block of plain lines in one msgspec call. Once a block has shown the log's currency,
    the next ones are decoded for exactly that currency first (and for any, if that fails), so
    msgspec checks every amount's currency. A block with a line that fails is decoded `CHUNK_LINES`
    lines a call, and a line a call only in the chunks that fail."""

    def __init__(self) -> None:
        self.currency: str | None = None
        self._decoders: dict[str, msgspec.json.Decoder[Shape]] = {}

    def _tries(self) -> Tries:
        """The decoders to try in turn, and the currency each makes sure of."""
        if self.currency is None:
            return _ANY
        if self.currency not in self._decoders:
            self._decoders[self.currency] = decoder_for(self.currency)
        return [(self._decoders[self.currency], self.currency), (DECODER, None)]

    def read_rows(self, block: Block, first: int, names: Names) -> Rows | None:
        """The block's rows (its first line numbered `first`) from the compiled reader, if it is built
        and takes the block whole (`orderbank.replay.native`); None to decode it here."""
        if block.plain_lines is None:
            return None
        found = read_rows(block.text, block.plain_lines, first, names, self.currency)
        if found is None:
            return None
        rows, currency = found
        self.currency = self.currency or currency
        return rows

    def read(self, block: Block) -> tuple[list[Shape], str | None] | None:
        """The block's events, and the one currency they are all in if the decoder made sure of it;
        None if the block is not plain or a line fails."""
        if block.plain_lines is None:
            return None
        found = _decode_lines(self._tries(), block.text, block.plain_lines)
        if found is not None:
            self.currency = found[1] or _first_currency(found[0]) or self.currency
        return found

    def read_lines(self, block: Block) -> tuple[list[Shape | None], str | None]:
        """Each line's shape, for a plain block that `read` could not take in one call, and the one
        currency the amounts are all in if the decoder made sure of it for every line; None for a line
        msgspec cannot decode. A few bad lines in every block would otherwise have the whole log
        decoded a line at a time and its currencies checked apart (~1.5x the time of a clean log)."""
        assert block.plain_lines is not None
        tries, ends, lines = self._tries(), [0, *(block.ends + 1).tolist()], block.plain_lines
        shapes, sure = list[Shape | None](), tries[0][1]
        for first in range(0, lines, CHUNK_LINES):
            last = min(first + CHUNK_LINES, lines)
            chunk = block.text[ends[first]:ends[last]]
            if (found := _decode_lines(tries, chunk, last - first)) is not None:
                shapes.extend(found[0])
                sure = sure if found[1] is not None else None
            else:  # a line at a time
                for start, end in zip(ends[first:last], ends[first + 1:last + 1], strict=True):
                    shape, currency = _decode_line(tries, block.text[start:end])
                    shapes.append(shape)
                    sure = sure if shape is None or currency is not None else None
        self.currency = self.currency or _first_currency([shape for shape in shapes if shape is not None])
        return shapes, sure


def _decode_lines(tries: Tries, text: memoryview, lines: int) -> tuple[list[Shape], str | None] | None:
    """The `lines` lines of `text` decoded by the first of `tries` that takes them all, and the currency
    it made sure of; None if none does."""
    for decoder, currency in tries:
        try:
            shapes: list[Shape] = decoder.decode_lines(text)
        except (ValueError, RecursionError) as exc:  # msgspec's errors, bad UTF-8, nesting past msgspec's depth
            if _stops_every_decoder(exc, currency):
                return None
            continue
        return (shapes, currency) if len(shapes) == lines else None
    return None


def _decode_line(tries: Tries, line: memoryview | bytes) -> tuple[Shape | None, str | None]:
    """One line decoded by the first of `tries` that takes it, and the currency it made sure of."""
    for decoder, currency in tries:
        try:
            shape: Shape = decoder.decode(line)
        except (ValueError, RecursionError) as exc:  # as in `_decode_lines`
            if _stops_every_decoder(exc, currency):
                break
            continue
        return shape, currency
    return None, None


def _stops_every_decoder(exc: Exception, currency: str | None) -> bool:
    """Past a currency's decoder that stopped at anything but an amount's currency, any decoder stops
    at that line too."""
    return currency is not None and not _AT_CURRENCY.search(str(exc))


def _first_currency(shapes: list[Shape]) -> str | None:
    """The currency of the first order placed among these events, if it is a currency code."""
    placed = next((shape for shape in shapes if shape.kind == PLACED), None)
    currency: str | None = _CURRENCY(placed) if placed is not None else None
    return currency if currency is not None and is_currency(currency) else None


def decode_block(block: Block, first: int, names: Names, exact: ExactPath,
                 reader: BlockReader | None) -> tuple[Rows, int]:
    """The events of `block` (its first line numbered `first`) as rows; and how many lines it held, blank
    ones too, so every line keeps its number in the file.
    A block the reader cannot read in one go is decoded a line at a time, with msgspec first; with
    no reader, every line goes through orderbank.projections.codec."""
    if reader is not None and (read := reader.read_rows(block, first, names)) is not None:
        return read, len(read)
    whole = reader.read(block) if reader is not None else None
    lines: list[bytes] = []
    if whole is not None:
        shapes, count = whole[0], len(whole[0])
        numbers = np.arange(first, first + count)
        currency = None if whole[1] is None else names.currency[whole[1]]
    else:
        lines = [line.strip() for line in bytes(block.text).split(b"\n")[:-1]]  # the block ends in a newline
        count, shapes, kept = len(lines), [], []
        if reader is not None and block.plain_lines is not None:
            decoded, sure = reader.read_lines(block)
        else:
            decoded, sure = [_one(line) if reader is not None and line else None for line in lines], None
        for number, line, fast in zip(range(first, first + count), lines, decoded, strict=True):
            if not line:  # a blank line: numbered, not decoded
                continue
            shape = fast if fast is not None else exact.shape(number, line)
            if shape is not None:
                if fast is None and HAS_MONEY[shape.kind]:  # an amount no decoder made sure of
                    sure = None
                shapes.append(shape)
                kept.append(number)
        numbers = np.array(kept, dtype=np.int64)
        currency = None if sure is None else names.currency[sure]
    rows, ok = columns(shapes, numbers, names, currency)
    if not ok.all():  # values only numpy could check: those lines go to the exact path
        lines = lines or bytes(block.text).split(b"\n")  # line `first + k` is lines[k] either way
        redone = [exact.shape(number, lines[number - first]) if not good else shape
                  for shape, number, good in zip(shapes, numbers.tolist(), ok.tolist(), strict=True)]
        numbers = numbers[[shape is not None for shape in redone]]
        rows, ok = columns([shape for shape in redone if shape is not None], numbers, names)
        assert ok.all(), "an event orderbank.projections.codec accepted fails the fast path's checks in canonical shape"
    return rows, count


def _one(line: bytes) -> Shape | None:
    return _decode_line(_ANY, line)[0] if len(line) <= MAX_EVENT_BYTES else None


def columns(shapes: list[Shape], numbers: I64, names: Names, currency: int | None = None) -> tuple[Rows, Flags]:
    """The shapes' values as columns, and which rows passed the checks numpy does (`currency`: the
    code of the one currency all their amounts are in, when the decoder made sure of it)."""
    n = len(shapes)
    kind = np.fromiter(map(_KIND, shapes), np.int8, n)
    (placed, placings), (demanded, demands), (cancelled, cancels), (delivered, deliveries) = (
        _of_kind(shapes, kind, code) for code in (PLACED, DEMANDED, CANCELLED, DELIVERED))
    at, ok = parse(as_chars(list(map(_AT, shapes))))
    timed = np.concatenate((placed, demanded, delivered))
    when = np.full(n, NEVER, dtype=np.int64)
    when[timed], when_ok = parse(as_chars([*map(_WHEN, placings), *map(_WHEN, demands), *map(_WHEN, deliveries)]))
    ok[timed] &= when_ok
    event, event_ok = event_ids(as_rows("".join(map(_ID, shapes)), EVENT_ID_CHARS))
    ok &= event_ok
    order, order_ok = _order_words(shapes)
    if currency is None:
        currencies, currency_ok = _currencies(shapes, _CURRENCY, names)
        ok &= currency_ok
    else:
        currencies = np.where(HAS_MONEY[kind], np.int16(currency), np.int16(-1))
    ok &= order_ok
    rows = Rows(line=numbers, kind=kind, event=event, order=order,
                seq=np.fromiter(map(_SEQ, shapes), np.int64, n), at=at, when=when,
                minor=np.fromiter(map(_MINOR, shapes), np.int64, n), currency=currencies,
                deposit=np.zeros(n, np.int64), deposit_currency=np.full(n, -1, np.int16),
                trim_rank=np.zeros(n, np.int16), model=np.full(n, -1, np.int32), trim=np.full(n, -1, np.int32),
                detail=np.zeros(n, np.int8))
    count = len(placings)
    rows.deposit[placed] = np.fromiter(map(attrgetter("deposit.minor"), placings), np.int64, count)
    if currency is None:
        rows.deposit_currency[placed], deposit_ok = _currencies(placings, attrgetter("deposit.currency"), names)
        ok[placed] &= deposit_ok
    else:
        rows.deposit_currency[placed] = currency
    rows.trim_rank[placed] = np.fromiter(map(attrgetter("trim_rank"), placings), np.int16, count)
    rows.model[placed] = names.model.of(map(attrgetter("model"), placings), count, np.int32)
    rows.trim[placed] = names.trim.of(map(attrgetter("trim"), placings), count, np.int32)
    rows.detail[demanded] = np.fromiter(map(_PURPOSE.__getitem__, map(attrgetter("purpose"), demands)), np.int8,
                                        len(demands))
    rows.detail[cancelled] = np.fromiter(map(_REASON.__getitem__, map(attrgetter("reason"), cancels)), np.int8,
                                         len(cancels))
    ok[delivered] &= vins_ok(as_rows("".join(map(attrgetter("vin"), deliveries)), VIN_CHARS))
    return rows, ok


def _of_kind(shapes: list[Shape], kind: I8, code: int) -> tuple[npt.NDArray[np.intp], list[Shape]]:
    """The rows of one event type, and their shapes."""
    rows = np.flatnonzero(kind == code)
    if len(rows) < 2:
        return rows, [shapes[i] for i in rows.tolist()]
    return rows, list(itemgetter(*rows.tolist())(shapes))


def _currencies(shapes: list[Shape], currency: attrgetter[str], names: Names) -> tuple[I16, Flags]:
    """The currency codes of the shapes (-1 for an event without money), and which are three capitals."""
    codes = names.currency.of(map(currency, shapes), len(shapes), np.int16)
    valid = np.array([is_currency(name) for name in names.currency.names] + [True], dtype=bool)  # last: code -1
    return codes, valid[codes]


def _order_words(shapes: list[Shape]) -> tuple[Words, Flags]:
    """Order ids as zero-padded 64-bit words, and which match the OrderId pattern."""
    n = len(shapes)
    joined = Joined.of(map(_ORDER, shapes), n)
    lengths = joined.lengths
    if lengths is None:  # some id holds a NUL: measure them one by one (the NUL fails the pattern)
        lengths = np.fromiter((len(shape.order_id) for shape in shapes), np.int64, n)
    longest = int(lengths.max(initial=1))
    padded = np.zeros((n, -(-longest // 8) * 8), dtype=np.uint8)
    if np.all(lengths == longest):
        padded[:, :longest] = joined.rows(longest)
    else:
        keep = np.ones(len(joined.text), dtype=bool)
        keep[np.cumsum(lengths + 1) - 1] = False  # the separators
        raw = joined.text[keep]
        row = np.repeat(np.arange(n), lengths)
        padded[row, np.arange(len(raw)) - (np.cumsum(lengths) - lengths)[row]] = raw
    return padded.view(np.uint64), order_ids_ok(padded, lengths)


def no_rows() -> Rows:
    """The rows of an empty log."""
    rows, _ = columns([], np.zeros(0, dtype=np.int64), Names())
    return rows
