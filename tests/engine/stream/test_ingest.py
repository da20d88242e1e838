"""The ingest's routing (orderbank.engine.stream.ingest): every event of an order to its lane's shard,
the lane fixed by a placement a bank may apply, everything else where the fold's verdict is reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.stream.ingest import LaneDirectory, Route, Routes
from orderbank.projections.bank import BankSettings
from orderbank.projections.codec import encode
from orderbank.projections.events import Money
from tests.support import factories as f

SHARDS = 4


def routes_of(directory: LaneDirectory, records: Sequence[tuple[bytes | None, bytes]],
              routes: Routes | None = None) -> list[Route]:
    return directory.route(routes or Routes(), [key for key, _ in records], [value for _, value in records])


def routed(directory: LaneDirectory, records: Sequence[tuple[bytes | None, bytes]],
           routes: Routes | None = None) -> list[tuple[int, bool]]:
    """Each record's shard, and whether its event id is taken."""
    return [(route.shard, route.id_taken) for route in routes_of(directory, records, routes)]


def test_lanes_route_every_event_of_an_order_to_its_placements_shard(launch_docs: list[dict[str, Any]]) -> None:
    directory = LaneDirectory(BankSettings(lane_by="model_trim"), SHARDS)
    expected = {d["order_id"]: partition_for(f"{d['model']}/{d['trim']}".encode(), SHARDS)
                for d in launch_docs if d["type"] == "OrderPlaced"}
    expected |= {d["order_id"]: partition_for(d["model"].encode(), SHARDS)  # a plan stream of the whole model
                 for d in launch_docs if d["type"] == "ProductionPlanned"}
    records = [(d["order_id"].encode(), orjson.dumps(d)) for d in launch_docs]
    everything = routed(directory, records)
    assert everything == [(expected[d["order_id"]], False) for d in launch_docs]
    # What a partition's first records taught (a rebuild) routes the next ones (fetched later) alike.
    routes = Routes()
    assert routed(directory, records[:1000], routes) + routed(directory, records[1000:], routes) == everything
    stray = orjson.dumps({**launch_docs[0], "type": "PaymentReceived", "order_id": "never-placed", "seq": 2,
                          "amount": {"minor": 1, "currency": "CNY"}})
    assert routed(directory, [(b"never-placed", stray)]) == [(partition_for(b"never-placed", SHARDS), False)]


def lane(model: str) -> int:
    return partition_for(model.encode(), SHARDS)


def test_a_placement_no_bank_would_apply_does_not_choose_the_orders_shard() -> None:
    """A rejected placement naming another model, before the real one, once sent the order's events
    to the other model's shard, which opened a second lane of the real model."""
    assert lane("SU7") != lane("YU7")  # the finding needs two shards
    naming_su7 = f.placed("X", 0, model="SU7")
    w = f.placed("W", model="SU7").model_copy(update={"event_id": f.eid("X", 1, "taken")})
    records = [
        (b"X", encode(naming_su7.model_copy(update={"seq": 2, "event_id": f.eid("X", 1, "seq")}))),  # seq_gap
        (b"X", encode(naming_su7.model_copy(update={"deposit": Money(minor=1, currency="USD"),
                                                    "event_id": f.eid("X", 1, "usd")}))),  # currency_mismatch
        (b"W", encode(w)), (b"X", encode(naming_su7.model_copy(update={"event_id": w.event_id}))),  # id taken
        (b"Z", encode(naming_su7)),  # keyed by another order
        (b"X", encode(f.placed("X", 1))), (b"X", encode(f.received("X", 2, 2, 100))),
        (b"X", encode(naming_su7))]  # after the real one: to its order's shard, whose bank calls it a duplicate
    shards = routed(LaneDirectory(BankSettings(), SHARDS), records)
    by_key = partition_for(b"X", SHARDS)
    assert shards[:4] == [(by_key, False), (by_key, False), (lane("SU7"), False), (by_key, True)]
    assert shards[5:] == [(lane("YU7"), False)] * 3


def test_an_event_whose_id_another_event_took_is_marked_and_goes_by_its_key() -> None:
    a, b = f.placed("A"), f.placed("B", model="SU7")
    reuse = b.model_copy(update={"event_id": a.event_id})
    records = [(b"A", encode(a)), (b"B", encode(reuse)), (b"B", encode(b)), (b"A", encode(a)),
               (b"B", encode(reuse))]
    assert routed(LaneDirectory(BankSettings(), SHARDS), records) == [
        (lane("YU7"), False), (partition_for(b"B", SHARDS), True), (lane("SU7"), False),
        (lane("YU7"), False),  # a redelivery: the same event, its own id
        (partition_for(b"B", SHARDS), True)]  # the same bad bytes again: to the bank that counted them


def test_the_same_bytes_rejected_go_to_the_same_shard_whatever_their_key() -> None:
    directory = LaneDirectory(BankSettings(), SHARDS)
    early = encode(f.received("A", 2, 1, 100))
    records = [(b"A", b"{not json"), (b"B", b"{not json"), (None, b"{not json"), (b"A", early),
               (b"A", encode(f.placed("A"))), (b"A", early)]
    shards = routed(directory, records)
    assert len({shard for shard, _ in shards[:3]}) == 1
    assert shards[3:] == [(partition_for(b"A", SHARDS), False), (lane("YU7"), False), (lane("YU7"), False)]


def test_events_decoded_on_the_fast_path_are_marked_checked_for_their_shard() -> None:
    placed = encode(f.placed("A"))
    offset = placed.replace(b'Z"', b'+08:00"', 1)  # the models convert it to UTC: off the fast path
    records = [(b"A", placed), (b"A", b"{not json"), (b"B", offset), (b"C", placed), (b"A", placed)]
    checked = [route.checked for route in routes_of(LaneDirectory(BankSettings(), SHARDS), records)]
    assert checked == [True, False, False, False, True]  # keyed by another order: judged in full by its shard
