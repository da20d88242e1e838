"""Production plans: the event, its rules in the bank, the schedule it declares, and its place in a restore."""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
import pytest

from orderbank.projections.bank import BankSettings, OrderBank, Verdict, canonical, fold
from orderbank.projections.codec import Reason, Rejection, decode, decode_batch, encode
from orderbank.projections.events import Event
from orderbank.projections.orders import US_PER_DAY, micros
from orderbank.projections.plans import PlanStream, daily_cars
from orderbank.projections.restore import restore
from tests.support import factories as f


def test_a_plan_decodes_alike_on_both_paths_and_is_refused_for_what_it_breaks() -> None:
    plan = f.planned("plan:YU7", 1, 0, (0, 330), (7, 410), trim="Max")
    raw = encode(plan)
    fast, exact = decode_batch([raw])[0], decode(raw)
    assert type(fast).__name__ == "ProductionPlanned" and exact == plan
    as_json = msgspec.json.decode(msgspec.json.encode(fast))
    assert {k: v for k, v in as_json.items() if v is not None} == orjson.loads(encode(exact))
    broken = {"schedule": [], "delivery_lead_days": 366, "trim": ""}
    for field, value in broken.items():
        rejection = decode(orjson.dumps({**orjson.loads(raw), field: value}))
        assert isinstance(rejection, Rejection) and rejection.reason is Reason.INVALID_FIELD
        assert rejection.field == field
    steps = orjson.loads(raw)
    steps["schedule"][0]["cars_per_day"] = 3.5
    fractional = decode(orjson.dumps(steps))
    assert isinstance(fractional, Rejection) and fractional.field == "schedule.0.cars_per_day"
    assert isinstance(decode_batch([orjson.dumps(steps)])[0], Rejection)  # the fast path leaves it to the models


def test_a_plan_stream_keeps_its_seq_its_scope_and_its_own_ids() -> None:
    bank = OrderBank()
    first = f.planned("plan:YU7", 1, 0, (0, 300))
    assert bank.apply(first) is Verdict.APPLIED
    assert bank.apply(first) is Verdict.DUPLICATE
    gap = bank.apply(f.planned("plan:YU7", 3, 1, (0, 300)))
    assert isinstance(gap, Rejection) and gap.reason is Reason.SEQ_GAP
    other = bank.apply(f.planned("plan:YU7", 2, 1, (0, 300), trim="Max"))
    assert isinstance(other, Rejection) and other.rule == "plan_scope_fixed"
    fresh = bank.apply(f.planned("plan:SU7", 2, 1, (0, 300), model="SU7"))
    assert isinstance(fresh, Rejection) and fresh.rule == "first_seq_is_1"
    assert bank.apply(f.placed("O1")) is Verdict.APPLIED
    taken = bank.apply(f.planned("O1", 1, 1, (0, 5)).model_copy(update={"event_id": f.eid("O1", 1, "plan")}))
    assert isinstance(taken, Rejection) and taken.rule == "plan_stream_not_order"
    order = bank.apply(f.placed("plan:YU7", 1).model_copy(update={"event_id": f.eid("plan:YU7", 1, "order")}))
    assert isinstance(order, Rejection) and order.rule == "order_not_plan_stream"
    assert list(bank.orders) == ["O1"] and list(bank.plans) == ["plan:YU7"]
    assert bank.rejections == {"seq_gap": 2, "illegal_transition": 3}


def test_a_later_plan_supersedes_and_the_lane_reads_the_plans_in_force() -> None:
    bank = fold([f.planned("plan:YU7", 1, 0, (0, 100)), f.placed("O1", 0.5), f.planned("plan:YU7", 2, 10, (10, 400)),
                 f.planned("plan:YU7:Max", 1, 5, (0, 50), trim="Max")])
    queue = bank.queue
    assert [plan.steps[0].cars_per_day for plan in queue.in_force("YU7", micros(f.at(4)))] == [100]
    # Lanes by model: the model's plan and its trim's are both in force, the later model plan replacing the first.
    assert sorted(plan.steps[0].cars_per_day for plan in queue.in_force("YU7", micros(f.at(11)))) == [50, 400]
    # The epoch: the midnight before, or a plan declared since.
    assert queue.epoch("YU7", micros(f.at(10, 1))) == micros(f.at(10))
    assert queue.epoch("YU7", micros(f.at(11))) == micros(f.at(11)) - micros(f.at(11)) % US_PER_DAY
    assert BankSettings(lane_by="model_trim").plan_lane("YU7", "Max") == "YU7/Max"
    assert BankSettings(lane_by="model_trim").plan_lane("YU7", None) == "YU7"  # plans no trim lane
    assert BankSettings().plan_lane("YU7", "Max") == "YU7"


def test_a_schedule_counts_each_day_for_the_part_of_it_each_step_covers() -> None:
    stream = PlanStream("p", "YU7", None)
    stream.declare(f.planned("p", 1, 0, (1.5, 200), (0.5, 100)))  # steps out of order: sorted by start
    days = micros(f.at(0)) + US_PER_DAY * np.arange(4, dtype=np.int64)
    assert daily_cars(stream.plans, days).tolist() == pytest.approx([50.0, 150.0, 200.0])


def test_a_restored_bank_keeps_its_plans_and_their_ids() -> None:
    events: list[Event] = [f.placed("O1", 0), f.planned("plan:YU7", 1, 0.1, (0, 30)), f.placed("O2", 1),
                           f.planned("plan:YU7", 2, 2, (0, 40))]
    bank = fold(events)
    plans = [msgspec.json.decode(msgspec.json.encode(s), type=PlanStream) for s in bank.plans.values()]
    restored = restore(list(bank.orders.values()), bank.now_us, None,
                       [(e.event_id.int, e.order_id, e.seq) for e in events], plans=plans)
    assert canonical(restored.snapshot()) == canonical(bank.snapshot())
    assert restored.apply(events[1]) is Verdict.DUPLICATE
    assert restored.apply(f.planned("plan:YU7", 3, 3, (0, 50))) is Verdict.APPLIED
