"""Load an event log into columns (`OrderLog`) in one pass: orjson in a tight loop, the bank's rules.

Each line takes the fast path when it is exactly the canonical form of its event type (the keys
the encoder writes, JSON types the models accept without coercion, canonical timestamps) and
the event is the expected next step of its order (next seq, order open, same currency). Every
other line is decoded by `engine.codec.decode` and checked by `projections.orders.check`
against a view of the order built from the columns, so a rejection carries the same reason,
rule and message as the bank's. Values the hot loop only shape-checks (timestamps, event ids,
VINs) are verified a chunk at a time with numpy; if one fails, the whole log is loaded again on
the exact path, so nothing is guessed. The one bank rule not kept: an event id reused with a new
(order_id, seq) is applied here, where the bank would call it a duplicate.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from engine.codec import MAX_EVENT_BYTES, Reason, Rejection, decode
from engine.events import (
    Event,
    OrderCancelled,
    OrderPlaced,
    OrderTransferred,
    PaymentDemanded,
    PaymentReceived,
    RefundPaid,
    VehicleDelivered,
)
from projections.bank import BankSettings
from projections.orders import Order, Status, check
from replay.orderlog import CANCEL_REASONS, I64, NEVER, LoadReport, Movements, OrderLog, Payments
from replay.source import LineSource
from replay.timestamps import CANONICAL_LENGTH, WHOLE_SECOND_LENGTH, NotCanonical, fixed_width, parse_canonical

Progress = Callable[[int], None]
"""Called with the number of lines read so far, every `CHUNK` lines."""
CHUNK = 65_536
_TIME_LENGTHS = frozenset((CANONICAL_LENGTH, WHOLE_SECOND_LENGTH))
MAX_EXAMPLES = 20

_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_CURRENCY = re.compile(r"[A-Z]{3}")
_CHANNELS = frozenset(("app", "web", "store", "dealer"))
_PURPOSES = frozenset(("deposit", "balance", "fee"))
_REASON_CODE = {name: code for code, name in enumerate(CANCEL_REASONS, start=1)}
_HEX = np.zeros(256, dtype=bool)
_HEX[[ord(c) for c in "0123456789abcdefABCDEF"]] = True
_VIN = np.zeros(256, dtype=bool)
_VIN[[ord(c) for c in "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"]] = True
_UUID_DASHES = [8, 13, 18, 23]

OPEN, DELIVERED, CANCELLED_STATUS = 0, 1, 2
_STATUS = {OPEN: Status.OPEN, DELIVERED: Status.DELIVERED, CANCELLED_STATUS: Status.CANCELLED}


class _Exact(Exception):
    """Raised inside the hot loop: this line leaves the fast path."""


class _Stamps:
    """One time column's pending values: which order, when (canonical text), how much."""

    __slots__ = ("amount", "at", "order")

    def __init__(self) -> None:
        self.order: list[int] = []
        self.at: list[str] = []
        self.amount: list[int] = []

    def drain(self) -> tuple[I64, I64, I64]:
        """The pending values as arrays (amount empty unless the column holds money); then empty."""
        out = (np.array(self.order, np.int64), parse_canonical(self.at), np.array(self.amount, np.int64))
        self.order, self.at, self.amount = [], [], []
        return out


def _canonical(t: datetime) -> str:
    """A validated event's time in the fast path's canonical text form."""
    return t.isoformat(timespec="microseconds")[:-6] + "Z"


class _Columns:
    """The fold's state: per-order facts in lists, times parsed a chunk at a time."""

    def __init__(self, settings: BankSettings) -> None:
        self.settings = settings
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.lane_codes: dict[str, int] = {}
        self.trim_codes: dict[str, int] = {}
        self.lane_open: list[int] = []
        self.lane: list[int] = []
        self.trim: list[int] = []
        self.rank: list[int] = []
        self.currency: list[str] = []
        self.price: list[int] = []
        self.deposit: list[int] = []
        self.last_seq: list[int] = []
        self.status: list[int] = []
        self.demanded: list[int] = []
        self.received: list[int] = []
        self.refund_due: list[int] = []
        self.refunded: list[int] = []
        self.reason: list[int] = []
        self.transfers: list[int] = []
        self.entered, self.placed, self.demands, self.dues = _Stamps(), _Stamps(), _Stamps(), _Stamps()
        self.other, self.paid_demanded, self.paid_voluntary = _Stamps(), _Stamps(), _Stamps()
        self.fully_paid, self.prepaid, self.cancelled, self.refunds = _Stamps(), _Stamps(), _Stamps(), _Stamps()
        self.delivered_entered, self.delivered = _Stamps(), _Stamps()
        self.unchecked_ids: list[str] = []
        self.unchecked_vins: list[str] = []
        self.times: dict[str, I64] = {}
        self.money: dict[str, list[tuple[I64, I64, I64]]] = {"demanded": [], "voluntary": [], "refunds": []}
        self.start_us = self.end_us = NEVER
        self.applied = self.duplicates = self.exact_lines = 0
        self.rejected: Counter[str] = Counter()
        self.examples: list[dict[str, object]] = []

    # -- applying one legal event (checks are the caller's) ---------------------------------

    def place(self, order_id: str, occurred: str, placed: str, model: str, trim: str, rank: int,
              currency: str, price: int, deposit: int) -> None:
        i = len(self.ids)
        lane = model if self.settings.lane_by == "model" else f"{model}/{trim}"
        lane_code = self.lane_codes.setdefault(lane, len(self.lane_codes))
        if lane_code == len(self.lane_open):
            self.lane_open.append(0)
        self.lane_open[lane_code] += 1
        self.index[order_id] = i
        self.ids.append(order_id)
        self.lane.append(lane_code)
        self.trim.append(self.trim_codes.setdefault(trim, len(self.trim_codes)))
        self.rank.append(rank)
        self.currency.append(currency)
        self.price.append(price)
        self.deposit.append(deposit)
        self.last_seq.append(1)
        self.status.append(OPEN)
        if i == len(self.demanded):  # the money columns start at zero: extend them a chunk at a time
            zeros = [0] * CHUNK
            for column in (self.demanded, self.received, self.refund_due, self.refunded, self.reason,
                           self.transfers):
                column.extend(zeros)
        self.entered.order.append(i)
        self.entered.at.append(occurred)
        self.placed.order.append(i)
        self.placed.at.append(placed)
        self.applied += 1

    def demand(self, i: int, seq: int, occurred: str, amount: int, due: str, purpose: str) -> None:
        self.last_seq[i] = seq
        self.demanded[i] += amount
        if purpose == "balance":
            self.demands.order.append(i)
            self.demands.at.append(occurred)
            self.dues.order.append(i)
            self.dues.at.append(due)
        else:
            self.other.order.append(i)
            self.other.at.append(occurred)
        self.applied += 1

    def receive(self, i: int, seq: int, occurred: str, amount: int) -> None:
        self.last_seq[i] = seq
        voluntary = self.demanded[i] <= self.received[i]
        before = self.deposit[i] + self.received[i]
        self.received[i] += amount
        _stamp_money(self.paid_voluntary if voluntary else self.paid_demanded, i, occurred, amount)
        if before < self.price[i] <= before + amount:
            self.fully_paid.order.append(i)
            self.fully_paid.at.append(occurred)
            if voluntary:
                self.prepaid.order.append(i)
                self.prepaid.at.append(occurred)
        self.applied += 1

    def cancel(self, i: int, seq: int, occurred: str, reason: str, refund: int) -> None:
        self.last_seq[i] = seq
        self.status[i] = CANCELLED_STATUS
        self.lane_open[self.lane[i]] -= 1
        self.reason[i] = _REASON_CODE[reason]
        self.refund_due[i] = refund
        self.cancelled.order.append(i)
        self.cancelled.at.append(occurred)
        self.applied += 1

    def refund(self, i: int, seq: int, occurred: str, amount: int) -> None:
        self.last_seq[i] = seq
        self.refunded[i] += amount
        _stamp_money(self.refunds, i, occurred, amount)
        self.applied += 1

    def deliver(self, i: int, seq: int, occurred: str, delivered: str) -> None:
        self.last_seq[i] = seq
        self.status[i] = DELIVERED
        self.lane_open[self.lane[i]] -= 1
        self.delivered_entered.order.append(i)
        self.delivered_entered.at.append(occurred)
        self.delivered.order.append(i)
        self.delivered.at.append(delivered)
        self.applied += 1

    def transfer(self, i: int, seq: int, occurred: str) -> None:
        self.last_seq[i] = seq
        self.transfers[i] += 1
        self.other.order.append(i)
        self.other.at.append(occurred)
        self.applied += 1

    # -- the exact path ---------------------------------------------------------------------

    def exact(self, number: int, line: bytes) -> None:
        """Decode with engine.codec, check with the bank's lifecycle rule, then apply."""
        self.exact_lines += 1
        event = decode(line)
        if isinstance(event, Rejection):
            self.reject(number, event)
            return
        i = self.index.get(event.order_id)
        if i is not None and event.seq <= self.last_seq[i]:
            self.duplicates += 1
            return
        rejection = check(self.view(i) if i is not None else None, event) or self.over_limit(i, event)
        if rejection is not None:
            self.reject(number, rejection)
        else:
            self.apply(i, event)

    def over_limit(self, i: int | None, event: Event) -> Rejection | None:
        if i is not None or not isinstance(event, OrderPlaced):
            return None
        code = self.lane_codes.get(self.settings.lane_of(event))
        if code is not None and self.lane_open[code] >= self.settings.max_open_per_lane:
            return Rejection(Reason.LANE_FULL, "max_open_per_lane",
                             f"lane already holds {self.settings.max_open_per_lane} open orders",
                             None, event.order_id, str(event.event_id))
        return None

    def view(self, i: int) -> Order:
        """The bank's Order as far as its lifecycle rule (`check`) reads it."""
        return Order(order_id=self.ids[i], customer_id="", model="", trim="", trim_rank=self.rank[i], lane="",
                     currency=self.currency[i], list_price=self.price[i], deposit=self.deposit[i], placed_us=0,
                     cohort="", last_seq=self.last_seq[i], status=_STATUS[self.status[i]],
                     received=self.received[i], refund_due=self.refund_due[i], refunded=self.refunded[i])

    def apply(self, i: int | None, event: Event) -> None:
        at = _canonical(event.occurred_at)
        if isinstance(event, OrderPlaced):
            self.place(event.order_id, at, _canonical(event.placed_at), event.model, event.trim, event.trim_rank,
                       event.list_price.currency, event.list_price.minor, event.deposit.minor)
            return
        assert i is not None
        match event:
            case PaymentDemanded():
                self.demand(i, event.seq, at, event.amount.minor, _canonical(event.due_at), event.purpose)
            case PaymentReceived():
                self.receive(i, event.seq, at, event.amount.minor)
            case OrderCancelled():
                self.cancel(i, event.seq, at, event.reason, event.refund.minor)
            case RefundPaid():
                self.refund(i, event.seq, at, event.amount.minor)
            case VehicleDelivered():
                self.deliver(i, event.seq, at, _canonical(event.delivered_at))
            case OrderTransferred():
                self.transfer(i, event.seq, at)

    def reject(self, number: int, rejection: Rejection) -> None:
        self.rejected[rejection.reason.value] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"line": number, **rejection.as_dict()})

    # -- chunks -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Parse and verify the buffered times, ids and VINs; put them in their columns."""
        _verify_uuids(self.unchecked_ids)
        _verify_vins(self.unchecked_vins)
        self.unchecked_ids, self.unchecked_vins = [], []
        n = len(self.ids)
        for name, stamps in (("entered_us", self.entered), ("placed_us", self.placed),
                             ("fully_paid_us", self.fully_paid), ("prepaid_us", self.prepaid),
                             ("cancelled_us", self.cancelled), ("delivered_entered_us", self.delivered_entered),
                             ("delivered_us", self.delivered), ("demand_us", self.demands), ("due_us", self.dues),
                             ("", self.other), ("demanded", self.paid_demanded), ("voluntary", self.paid_voluntary),
                             ("refunds", self.refunds)):
            if not stamps.order:
                continue
            occurred = stamps is not self.placed and stamps is not self.dues and stamps is not self.delivered
            order, at, amount = stamps.drain()
            if occurred:
                low, high = int(at.min()), int(at.max())
                self.start_us = low if self.start_us == NEVER else min(self.start_us, low)
                self.end_us = max(self.end_us, high)
            if name in self.money:
                self.money[name].append((order, at, amount))
            elif name:
                self._put(name, n, order, at, first_only=name in ("demand_us", "due_us"))

    def _put(self, name: str, n: int, order: I64, at: I64, first_only: bool) -> None:
        column = self.times.get(name, np.zeros(0, np.int64))
        if len(column) < n:
            grown = np.full(max(n, 2 * len(column)), NEVER, dtype=np.int64)
            grown[: len(column)] = column
            self.times[name] = column = grown
        if first_only:
            order, first = np.unique(order, return_index=True)
            unset = column[order] == NEVER
            order, at = order[unset], at[first[unset]]
        column[order] = at

    def result(self, lines: int) -> OrderLog:
        self.flush()
        n = len(self.ids)
        currencies = sorted(set(self.currency))
        if len(currencies) > 1:
            raise ValueError(f"the replay sums money in one currency; this log has {', '.join(currencies)}")
        t = {name: self.times.get(name, np.full(n, NEVER, np.int64))[:n].copy()
             for name in ("entered_us", "placed_us", "fully_paid_us", "prepaid_us", "cancelled_us",
                          "delivered_entered_us", "delivered_us", "demand_us", "due_us")}
        demanded, voluntary = _concat(self.money["demanded"]), _concat(self.money["voluntary"])
        is_voluntary = np.concatenate([np.zeros(len(demanded[0]), bool), np.ones(len(voluntary[0]), bool)])
        pay_order, pay_at, pay_amount = (np.concatenate([d, v]) for d, v in zip(demanded, voluntary, strict=True))
        sequence = np.lexsort((pay_order, pay_at))
        report = LoadReport(lines=lines, applied=self.applied, duplicates=self.duplicates,
                            rejected=dict(self.rejected), examples=self.examples, exact_lines=self.exact_lines)
        return OrderLog(
            order_id=self.ids, lanes=tuple(self.lane_codes), lane=np.array(self.lane, np.int32),
            trims=tuple(self.trim_codes), trim=np.array(self.trim, np.int32), trim_rank=_ints(self.rank),
            currency=currencies[0] if currencies else "", list_price=_ints(self.price), deposit=_ints(self.deposit),
            placed_us=t["placed_us"], entered_us=t["entered_us"], demand_us=t["demand_us"], due_us=t["due_us"],
            received=_ints(self.received[:n]), fully_paid_us=t["fully_paid_us"], prepaid_us=t["prepaid_us"],
            delivered_us=t["delivered_us"], delivered_entered_us=t["delivered_entered_us"],
            cancelled_us=t["cancelled_us"], reason=np.array(self.reason[:n], np.int32),
            refund_due=_ints(self.refund_due[:n]), refunded=_ints(self.refunded[:n]),
            transfers=np.array(self.transfers[:n], np.int32),
            payments=Payments(pay_order[sequence], pay_at[sequence], pay_amount[sequence], is_voluntary[sequence]),
            refunds=Movements(*_concat(self.money["refunds"])),
            start_us=self.start_us, end_us=self.end_us, report=report,
        )


def _stamp_money(stamps: _Stamps, order: int, at: str, amount: int) -> None:
    stamps.order.append(order)
    stamps.at.append(at)
    stamps.amount.append(amount)


def _ints(values: list[int]) -> I64:
    return np.array(values, dtype=np.int64)


def _concat(chunks: list[tuple[I64, I64, I64]]) -> tuple[I64, I64, I64]:
    if not chunks:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    return (np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]),
            np.concatenate([c[2] for c in chunks]))


_HEX_AT = np.array([i for i in range(36) if i not in _UUID_DASHES])


def _verify_uuids(ids: list[str]) -> None:
    if not ids:
        return
    chars = fixed_width(ids, 36, "event_id")
    if not (np.all(chars[:, _UUID_DASHES] == ord("-")) and np.all(_HEX[chars[:, _HEX_AT]])):
        raise NotCanonical("an event_id is not a hyphenated UUID")


def _verify_vins(vins: list[str]) -> None:
    if vins and not np.all(_VIN[fixed_width(vins, 17, "vin")]):
        raise NotCanonical("a VIN holds a character outside [A-HJ-NPR-Z0-9]")


def load(source: LineSource, settings: BankSettings | None = None, progress: Progress | None = None,
         exact: bool = False) -> OrderLog:
    """The log's orders as columns. Fast path first; the exact path for the whole log if it must,
    or when asked (`exact`: every line through engine.codec, slow, for checking the fast path)."""
    settings = settings or BankSettings()
    # The fold allocates millions of short-lived containers and keeps no cycles: the cyclic
    # collector would rescan the growing columns again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _fold(source, _Columns(settings), fast=not exact, progress=progress)
    except NotCanonical:
        return _fold(source, _Columns(settings), fast=False, progress=progress)
    finally:
        if collecting:
            gc.enable()


def _text(value: Any) -> str:
    """A short string field (1 to 64 characters), or leave the fast path."""
    if type(value) is not str or not 0 < len(value) <= 64:
        raise _Exact
    return value


def _fold(source: LineSource, cols: _Columns, fast: bool, progress: Progress | None) -> OrderLog:
    # One function on purpose: the hot loop keeps every name local (a method call per field
    # would double the cost). Each branch reads exactly the keys its type has, checks the JSON
    # types the models accept without coercion, and applies through the same _Columns methods
    # the exact path uses.
    loads, exact, index, last_seq, status = orjson.loads, cols.exact, cols.index, cols.last_seq, cols.status
    currency, ids, vins = cols.currency, cols.unchecked_ids, cols.unchecked_vins
    number = 0
    for number, line in enumerate(source.lines(), start=1):
        if number % CHUNK == 0:
            cols.flush()
            ids, vins = cols.unchecked_ids, cols.unchecked_vins
            if progress is not None:
                progress(number)
        if not fast or len(line) > MAX_EVENT_BYTES:
            exact(number, line)
            continue
        try:
            doc = loads(line)
            kind, event_id, order_id, seq, occurred = (doc["type"], doc["event_id"], doc["order_id"], doc["seq"],
                                                       doc["occurred_at"])
            version = doc["schema_version"]
            if (type(seq) is not int or type(version) is not int or version != 2 or type(event_id) is not str
                    or len(event_id) != 36 or type(occurred) is not str or len(occurred) not in _TIME_LENGTHS):
                raise _Exact
            if kind == "OrderPlaced":
                price, deposit, placed = doc["list_price"], doc["deposit"], doc["placed_at"]
                rank, cur = doc["trim_rank"], price["currency"]
                if (len(doc) != 14 or order_id in index or seq != 1 or type(order_id) is not str
                        or len(order_id) > 64 or not _ORDER_ID.fullmatch(order_id) or type(rank) is not int
                        or not 0 <= rank <= 100 or len(price) != 2 or len(deposit) != 2
                        or type(price["minor"]) is not int or price["minor"] < 0 or type(cur) is not str
                        or not _CURRENCY.fullmatch(cur) or deposit["currency"] != cur
                        or type(deposit["minor"]) is not int or deposit["minor"] < 0 or type(placed) is not str
                        or len(placed) not in _TIME_LENGTHS or doc["channel"] not in _CHANNELS):
                    raise _Exact
                _text(doc["customer_id"])
                code = cols.lane_codes.get(doc["model"] if cols.settings.lane_by == "model"
                                           else f"{doc['model']}/{doc['trim']}")
                if code is not None and cols.lane_open[code] >= cols.settings.max_open_per_lane:
                    raise _Exact
                cols.place(order_id, occurred, placed, _text(doc["model"]), _text(doc["trim"]), rank, cur,
                           price["minor"], deposit["minor"])
            else:
                i = index[order_id]
                if seq != last_seq[i] + 1:
                    raise _Exact
                if kind == "RefundPaid":
                    money = doc["amount"]
                    minor = money["minor"]
                    if (len(doc) != 7 or status[i] != CANCELLED_STATUS or len(money) != 2 or type(minor) is not int
                            or minor < 0 or money["currency"] != currency[i]
                            or minor > cols.refund_due[i] - cols.refunded[i]):
                        raise _Exact
                    cols.refund(i, seq, occurred, minor)
                    ids.append(event_id)
                    continue
                if status[i] != OPEN:
                    raise _Exact
                if kind == "PaymentDemanded":
                    money, due, purpose = doc["amount"], doc["due_at"], doc["purpose"]
                    minor = money["minor"]
                    if (len(doc) != 9 or len(money) != 2 or type(minor) is not int or minor < 0
                            or money["currency"] != currency[i] or type(due) is not str
                            or len(due) not in _TIME_LENGTHS or purpose not in _PURPOSES):
                        raise _Exact
                    cols.demand(i, seq, occurred, minor, due, purpose)
                elif kind == "PaymentReceived":
                    money = doc["amount"]
                    minor = money["minor"]
                    if (len(doc) != 7 or len(money) != 2 or type(minor) is not int or minor < 0
                            or money["currency"] != currency[i]):
                        raise _Exact
                    cols.receive(i, seq, occurred, minor)
                elif kind == "VehicleDelivered":
                    delivered, vin = doc["delivered_at"], doc["vin"]
                    if (len(doc) != 8 or type(delivered) is not str or len(delivered) not in _TIME_LENGTHS
                            or type(vin) is not str or len(vin) != 17):
                        raise _Exact
                    cols.deliver(i, seq, occurred, delivered)
                    vins.append(vin)
                elif kind == "OrderCancelled":
                    money, reason = doc["refund"], doc["reason"]
                    minor = money["minor"]
                    if (len(doc) != 8 or len(money) != 2 or type(minor) is not int or minor < 0
                            or money["currency"] != currency[i] or reason not in _REASON_CODE
                            or minor > cols.deposit[i] + cols.received[i]):
                        raise _Exact
                    cols.cancel(i, seq, occurred, reason, minor)
                elif kind == "OrderTransferred":
                    if len(doc) != 7:
                        raise _Exact
                    _text(doc["new_customer_id"])
                    cols.transfer(i, seq, occurred)
                else:
                    raise _Exact
            ids.append(event_id)
        except (_Exact, KeyError, TypeError, ValueError, AttributeError):
            exact(number, line)
    return cols.result(number)
