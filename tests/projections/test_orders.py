"""The per-order state machine: legal paths apply, duplicates are no-ops, the rest are counted rejections."""

from __future__ import annotations

from orderbank.projections.bank import REJECTED_KEPT, BankSettings, OrderBank, Verdict, fold, fold_lines
from orderbank.projections.codec import Reason, Rejection, encode
from orderbank.projections.events import Event
from orderbank.projections.orders import Status
from tests.support import factories as f


def outcome_of(history: list[Event], event: Event) -> Verdict | Rejection:
    bank = fold(history)
    return bank.apply(event)


def reason_of(history: list[Event], event: Event) -> Reason:
    result = outcome_of(history, event)
    assert isinstance(result, Rejection), result
    assert result.order_id == event.order_id and result.event_id == str(event.event_id)
    return result.reason


def test_full_happy_path() -> None:
    bank = fold([f.placed("A"), f.transferred("A", 2, 1), f.demanded("A", 3, 10, 24_500_000),
                 f.received("A", 4, 12, 24_500_000), f.delivered("A", 5, 30)])
    order = bank.orders["A"]
    assert (order.status, order.customer_id, order.transfers, order.paid) == (Status.DELIVERED, "c2", 1, 25_000_000)
    assert (bank.applied, bank.duplicates, sum(bank.rejections.values())) == (5, 0, 0)


def test_same_event_id_is_a_duplicate() -> None:
    bank = fold([f.placed("A")])
    again = f.received("A", 2, 1, 100).model_copy(update={"event_id": f.eid("A", 1)})
    assert bank.apply(again) is Verdict.DUPLICATE
    assert bank.orders["A"].received == 0


def test_seq_already_applied_is_a_duplicate() -> None:
    bank = fold([f.placed("A"), f.received("A", 2, 1, 100)])
    assert bank.apply(f.received("A", 2, 1, 100).model_copy(update={"event_id": f.eid("A", 2, "retry")})) \
        is Verdict.DUPLICATE
    assert bank.apply(f.placed("A").model_copy(update={"event_id": f.eid("A", 1, "retry")})) is Verdict.DUPLICATE
    assert (bank.orders["A"].received, bank.duplicates, bank.applied) == (100, 2, 2)


def test_seq_gap() -> None:
    assert reason_of([f.placed("A")], f.received("A", 3, 1, 100)) is Reason.SEQ_GAP


def test_placement_must_be_seq_1() -> None:
    assert reason_of([], f.placed("A").model_copy(update={"seq": 2})) is Reason.SEQ_GAP


def test_second_placement_is_illegal() -> None:
    assert reason_of([f.placed("A")], f.placed("A").model_copy(update={"seq": 2, "event_id": f.eid("A", 2)})) \
        is Reason.ILLEGAL_TRANSITION


def test_pay_an_unknown_order() -> None:
    assert reason_of([], f.received("Z", 2, 1, 100)) is Reason.UNKNOWN_ORDER


def test_deliver_a_cancelled_order() -> None:
    assert reason_of([f.placed("A"), f.cancelled("A", 2, 1)], f.delivered("A", 3, 2)) is Reason.ILLEGAL_TRANSITION


def test_cancel_a_delivered_order() -> None:
    assert reason_of([f.placed("A"), f.delivered("A", 2, 1)], f.cancelled("A", 3, 2)) is Reason.ILLEGAL_TRANSITION


def test_transfer_a_closed_order() -> None:
    assert reason_of([f.placed("A"), f.delivered("A", 2, 1)], f.transferred("A", 3, 2)) is Reason.ILLEGAL_TRANSITION


def test_refund_only_after_cancel_and_within_what_is_owed() -> None:
    assert reason_of([f.placed("A")], f.refunded("A", 2, 1, 1)) is Reason.ILLEGAL_TRANSITION
    history: list[Event] = [f.placed("A"), f.cancelled("A", 2, 1, refund=300_000)]
    assert reason_of(history, f.refunded("A", 3, 2, 300_001)) is Reason.ILLEGAL_TRANSITION
    assert outcome_of(history, f.refunded("A", 3, 2, 300_000)) is Verdict.APPLIED


def test_refund_cannot_exceed_what_was_paid() -> None:
    assert reason_of([f.placed("A", deposit=500_000)], f.cancelled("A", 2, 1, refund=500_001)) \
        is Reason.ILLEGAL_TRANSITION


def test_currency_mismatch() -> None:
    usd = f.received("A", 2, 1, 100).model_copy(update={"amount": f.cny(100).model_copy(update={"currency": "USD"})})
    assert reason_of([f.placed("A")], usd) is Reason.CURRENCY_MISMATCH


def test_rejections_are_counted_and_change_nothing() -> None:
    bank = fold([f.placed("A"), f.cancelled("A", 2, 1)])
    before = bank.snapshot()
    bank.apply(f.delivered("A", 3, 2))
    bank.apply(f.received("Z", 2, 1, 5))
    bank.apply(f.received("A", 9, 1, 5))
    assert bank.snapshot() == before
    assert dict(bank.rejections) == {"illegal_transition": 1, "unknown_order": 1, "seq_gap": 1}
    assert bank.stats()["rejected"] == {"illegal_transition": 1, "seq_gap": 1, "unknown_order": 1}


def test_a_folded_log_counts_every_line_once_and_numbers_its_rejections() -> None:
    events: list[Event] = [f.placed("A"), f.cancelled("A", 2, 1), f.delivered("A", 3, 2), f.placed("A")]
    lines = [encode(events[0]), b"{not json", encode(events[1]), b'{"type": "Nope"}', encode(events[2]),
             encode(events[3])]
    bank, rejected = fold_lines(lines)
    assert [(number, rejection.reason) for number, rejection in rejected] == [
        (2, Reason.MALFORMED_JSON), (4, Reason.UNKNOWN_TYPE), (5, Reason.ILLEGAL_TRANSITION)]
    assert bank.stats() == {**fold(events).stats(), "rejected": {
        "illegal_transition": 1, "malformed_json": 1, "unknown_type": 1}}
    assert bank.snapshot() == fold(events).snapshot()


def test_a_folded_log_numbers_its_lines_as_the_file_does() -> None:
    lines = [b"", encode(f.placed("A")), b"", b"", b"{not json", b""]
    bank, rejected = fold_lines(lines)
    assert [(number, rejection.reason) for number, rejection in rejected] == [(5, Reason.MALFORMED_JSON)]
    assert (bank.applied, dict(bank.rejections)) == (1, {"malformed_json": 1})  # a blank line is neither


def test_a_folded_log_keeps_its_first_rejected_lines_and_counts_them_all() -> None:
    bank, rejected = fold_lines([encode(f.placed("A")), *[b"{not json"] * 100_000, encode(f.placed("A"))])
    assert [number for number, _ in rejected] == list(range(2, 2 + REJECTED_KEPT))
    assert dict(bank.rejections) == {"malformed_json": 100_000} and bank.duplicates == 1


def test_lane_limit() -> None:
    bank = OrderBank(BankSettings(max_open_per_lane=2))
    assert bank.apply(f.placed("A")) is Verdict.APPLIED
    assert bank.apply(f.placed("B")) is Verdict.APPLIED
    result = bank.apply(f.placed("C"))
    assert isinstance(result, Rejection) and result.reason is Reason.LANE_FULL
    bank.apply(f.delivered("A", 2, 1))
    assert bank.apply(f.placed("C")) is Verdict.APPLIED
