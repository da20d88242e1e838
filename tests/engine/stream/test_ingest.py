"""The ingest's routing (orderbank.engine.stream.ingest): every event of an order to its lane's shard."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.stream.ingest import LaneDirectory
from orderbank.projections.bank import BankSettings


def test_lanes_route_every_event_of_an_order_to_its_placements_shard(launch_docs: list[dict[str, Any]]) -> None:
    directory = LaneDirectory(BankSettings(lane_by="model_trim"), 4)
    directory.learn(0, [])
    directory.learn(1, [])
    expected = {d["order_id"]: partition_for(f"{d['model']}/{d['trim']}".encode(), 4)
                for d in launch_docs if d["type"] == "OrderPlaced"}
    expected |= {d["order_id"]: partition_for(d["model"].encode(), 4)
                 for d in launch_docs if d["type"] == "ProductionPlanned"}
    for doc in launch_docs:
        key = doc["order_id"].encode()
        assert directory.shard_of(0, key, orjson.dumps(doc)) == expected[doc["order_id"]]
    stray = orjson.dumps({**launch_docs[0], "type": "PaymentReceived"})
    assert directory.shard_of(1, b"never-placed", stray) == partition_for(b"never-placed", 4)
    directory.forget([0])
    assert directory.orders == {1: {}}
    with pytest.raises(KeyError):  # a partition not adopted (revoked, or not rebuilt yet) is not routed
        directory.shard_of(0, b"YU7-1", stray)
