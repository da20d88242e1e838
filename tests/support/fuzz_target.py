"""The fuzz target shared by hypothesis and atheris: arbitrary bytes into the decoder and the bank.

`feed(bank, raw)` must never raise; it returns what happened. Run under atheris as a script:
`python tests/support/fuzz_target.py -runs=20000` (libFuzzer flags).
"""

from __future__ import annotations

import sys

from orderbank.projections.bank import OrderBank, Verdict, canonical
from orderbank.projections.codec import Reason, Rejection, decode
from tests.support import factories as f


def seeded_bank() -> OrderBank:
    """A bank with orders in every state, so fuzzed events can hit every transition."""
    bank = OrderBank()
    for event in (f.placed("A"), f.placed("B"), f.cancelled("B", 2, 1, refund=500_000), f.placed("C"),
                  f.delivered("C", 2, 2)):
        bank.apply(event)
    return bank


def feed(bank: OrderBank, raw: bytes) -> Verdict | Rejection:
    """Decode and apply; a rejection leaves the bank's projections exactly as they were."""
    event = decode(raw)
    if isinstance(event, Rejection):
        assert isinstance(event.reason, Reason) and event.rule and event.message
        if event.reason is Reason.INVALID_FIELD:
            assert event.field, event
        return event
    before = canonical(bank.snapshot())
    outcome = bank.apply(event)
    if not isinstance(outcome, Verdict) or outcome is Verdict.DUPLICATE:
        assert canonical(bank.snapshot()) == before
    return outcome


def main() -> None:
    import atheris

    bank = seeded_bank()

    def one_input(data: bytes) -> None:
        feed(bank, data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
