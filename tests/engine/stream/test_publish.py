"""The bounded publishing rule (orderbank.engine.stream.publish): few messages per event, and the topics still say
where everyone is."""

from __future__ import annotations

import itertools
import math
import random

import orjson
import pytest

from orderbank.engine.stream import publish
from orderbank.engine.stream.publish import POSITIONS, QUEUE, Buckets, Publisher, Record
from orderbank.projections.bank import BankSettings, OrderBank, canonical
from orderbank.projections.policies import parse_policy
from tests.support.factories import cancelled, delivered, placed, received

OPEN = 3000


def latest(records: list[Record], into: dict[bytes, dict[str, object]]) -> dict[bytes, dict[str, object]]:
    for projection, key, value in records:
        if projection == POSITIONS:
            assert value is not None
            into[key] = orjson.loads(value)
    return into


def assert_buckets_hold_exact_positions(bank: OrderBank, published: dict[bytes, dict[str, object]]) -> None:
    for order_id, order in bank.orders.items():
        record = published[order_id.encode()]
        assert record["status"] == order.status.value
        exact = bank.position_of(order_id)
        if exact is None:
            assert record["bucket"] is None
        else:
            bucket = record["bucket"]
            assert isinstance(bucket, list) and bucket[0] <= exact.position <= bucket[1]


def test_buckets_grow_geometrically() -> None:
    halving = Buckets(2.0)
    assert [halving.of(p) for p in (1, 2, 3, 4, 7, 8, 1000)] == [(1, 1), (2, 3), (2, 3), (4, 7), (4, 7), (8, 15),
                                                                    (512, 1023)]
    assert Buckets(1.5).cover(15) == [1, 2, 3, 5, 8, 12, 18]


def test_a_departure_costs_at_most_one_record_per_bucket_boundary() -> None:
    bank, publisher = OrderBank(), Publisher(0, ratio=2.0)
    for i in range(OPEN):
        bank.apply(placed(f"O{i:05d}", day=i / OPEN))
    published = latest(publisher.positions(bank, set()), {})
    assert len(published) == OPEN  # a fresh publisher publishes every order once
    for leaving in ("O00000", "O01500", "O02999"):
        bank.apply(delivered(leaving, 2, day=2))
        records = publisher.positions(bank, {leaving})
        assert len(records) <= math.ceil(math.log2(OPEN)) + 1
        assert_buckets_hold_exact_positions(bank, latest(records, published))


def test_a_period_publishes_only_real_changes_including_orders_that_came_and_went() -> None:
    bank, publisher = OrderBank(), Publisher(0, ratio=1.25)
    for i in range(OPEN):
        bank.apply(placed(f"O{i:05d}", day=i / OPEN))
    published = latest(publisher.positions(bank, set()), {})
    touched = set()
    for i in range(0, 600, 2):
        bank.apply(cancelled(f"O{i:05d}", 2, day=2))
        touched.add(f"O{i:05d}")
    bank.apply(placed("LATE", day=3))
    bank.apply(cancelled("LATE", 2, day=3))
    before = {key: doc["bucket"] for key, doc in published.items()}
    records = publisher.positions(bank, touched | {"LATE"})
    after = latest(records, {})
    assert len(after) == len(records)  # one record per order, however many events it had
    assert after[b"LATE"]["status"] == "cancelled"
    moved = [key for key, doc in after.items() if doc["status"] == "open"]
    assert all(after[key]["bucket"] != before[key] for key in moved)  # nothing sent without a change
    assert len(after) - len(moved) == len(touched) + 1  # and every order that left, once
    assert_buckets_hold_exact_positions(bank, published | after)
    assert publisher.positions(bank, set()) == []


def test_a_whole_pass_publishes_an_order_that_left_unannounced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole pass counts the published orders that are no longer open instead of looking at each: when an
    order left without being among the orders said to have changed, the count does not add up and it looks."""
    bank, publisher = OrderBank(), Publisher(0)
    for i in range(OPEN):
        bank.apply(placed(f"O{i:05d}", day=i / OPEN))
    published = latest(publisher.positions(bank, set()), {})
    bank.apply(cancelled("O00007", 2, day=2))
    bank.apply(cancelled("O00009", 2, day=2))
    monkeypatch.setattr(publish, "_spans", lambda *_: None)
    after = latest(publisher.positions(bank, {"O00007"}), published)
    assert after[b"O00009"]["status"] == after[b"O00007"]["status"] == "cancelled"
    assert_buckets_hold_exact_positions(bank, after)
    assert publisher.positions(bank, set()) == []


@pytest.mark.parametrize("policy", ["fifo", "high-trim-first", "paid-first", "bounded-overtake:k=50"])
def test_a_publish_that_looks_near_the_bucket_boundaries_only_sends_what_a_whole_pass_sends(
        policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between publishes orders come, go and are re-keyed (paid-first) by the dozen or by the thousand: the
    records of the publish that looks only where orders can have crossed a boundary are a whole pass's."""
    rng = random.Random(17)
    bank = OrderBank(BankSettings(policy=parse_policy(policy)))
    near, whole = Publisher(0, ratio=1.5), Publisher(0, ratio=1.5)
    seqs: dict[str, int] = {}
    open_ids: list[str] = []
    published: dict[bytes, dict[str, object]] = {}
    looked_near = 0
    for step, burst in enumerate([2000, 3, 40, 1, 700, 12, 3000, 5, 90, 1]):
        touched = set()
        for _ in range(burst):
            roll, day = rng.random(), step + rng.random()
            if roll < 0.5 or not open_ids:
                order_id = f"O{len(seqs):05d}"
                seqs[order_id] = 1
                open_ids.append(order_id)
                bank.apply(placed(order_id, day=day, trim=rng.choice(["Standard", "Max"]), rank=rng.choice([0, 50])))
            else:
                order_id = rng.choice(open_ids)
                seqs[order_id] += 1
                if roll < 0.7:
                    bank.apply(received(order_id, seqs[order_id], day, 1_000_000))
                else:
                    open_ids.remove(order_id)
                    bank.apply(cancelled(order_id, seqs[order_id], day) if roll < 0.85 else
                               delivered(order_id, seqs[order_id], day))
            touched.add(order_id)
        lane = bank.queue.lanes["YU7"]
        looked_near += publish._spans(near.buckets.cover(len(lane.open) * 2), len(lane.open), touched, lane,
                                      near.published.get("YU7", {})) is not None
        records = near.positions(bank, touched)
        with monkeypatch.context() as patched:
            patched.setattr(publish, "_spans", lambda *_: None)
            assert records == whole.positions(bank, touched)
        assert_buckets_hold_exact_positions(bank, latest(records, published))
    assert looked_near >= 5 or policy.startswith("bounded-overtake")


def test_figures_and_lane_snapshots_are_published_when_they_change() -> None:
    bank, publisher = OrderBank(), Publisher(0, page_size=100)
    for i in range(250):
        bank.apply(placed(f"O{i:05d}", day=i / 250))
    assert publisher.figures(bank) and publisher.figures(bank) == []
    pages = [key for projection, key, value in publisher.lane_snapshots(bank) if value is not None]
    assert len(pages) == 4  # three pages and the lane's header
    for i in range(200):
        bank.apply(delivered(f"O{i:05d}", 2, day=2))
    records = publisher.lane_snapshots(bank)
    assert [key for _, key, value in records if value is None] == [b'["page","YU7",1]', b'["page","YU7",2]']
    header = next(orjson.loads(v) for p, k, v in records if p == QUEUE and k == b'["lane","YU7"]' and v)
    assert (header["open"], header["pages"]) == (50, 1)


@pytest.mark.parametrize("ratio", [1.1, 2.0, 10.0])
def test_every_position_falls_in_exactly_one_bucket(ratio: float) -> None:
    buckets = Buckets(ratio)
    seen = [buckets.of(p) for p in range(1, 5000)]
    for position, (low, high) in zip(range(1, 5000), seen, strict=True):
        assert low <= position <= high
    assert all(a == b or a[1] + 1 == b[0] for a, b in itertools.pairwise(seen))


def test_position_records_are_canonical_json() -> None:
    bank, publisher = OrderBank(), Publisher(0)
    for i in range(50):
        bank.apply(placed(f"O{i:05d}", day=i / 50))
    bank.apply(delivered("O00000", 2, day=2))
    records = publisher.positions(bank, set())
    assert len(records) == 50 and {orjson.loads(value or b"")["status"] for _, _, value in records} == {
        "open", "delivered"}
    for _, _, value in records:
        assert value is not None and canonical(orjson.loads(value)) == value
