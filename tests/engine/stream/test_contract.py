"""The topics' contract (orderbank.engine.stream.contract): docs/asyncapi.yaml is what the code generates, it is
valid AsyncAPI 3.0.0, every reference in it resolves, it names every topic as the engine creates it, and the
records a worker really writes fit the messages it documents.

Validity is checked against the AsyncAPI 3.0.0 JSON Schema of the AsyncAPI Initiative (tests/data/asyncapi)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.validators import validator_for
from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import Entry
from orderbank.engine.stream.publish import Publisher
from orderbank.engine.stream.runtime import dead_letter_headers
from orderbank.projections.bank import fold_lines
from orderbank.projections.codec import Reason, Rejection
from orderbank.replay.synth import generate, preset
from tests import REPO_ROOT

DOC = REPO_ROOT / "docs" / "asyncapi.yaml"
ASYNCAPI_3 = REPO_ROOT / "tests" / "data" / "asyncapi" / "3.0.0.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DOC.read_text())
    return doc


@pytest.fixture(scope="module")
def asyncapi_3() -> Draft7Validator:
    return Draft7Validator(json.loads(ASYNCAPI_3.read_text()))


def test_the_committed_document_is_what_the_code_generates(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "asyncapi.yaml"
    result = CliRunner().invoke(app, ["asyncapi", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == DOC.read_text(), "docs/asyncapi.yaml is stale: run `orderbank asyncapi`"


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any], asyncapi_3: Draft7Validator) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert [f"{error.json_path}: {error.message}" for error in asyncapi_3.iter_errors(document)] == []


@pytest.mark.parametrize(("path", "value"), [
    (("channels", "events", "bindings", "kafka", "partitions"), 0),
    (("channels", "pool", "bindings", "kafka", "topicConfiguration", "cleanup.policy"), "compact"),
    (("operations", "send_positions", "action"), "publish"),
    (("servers", "kafka", "protocol"), None),
])
def test_the_validator_refuses_a_broken_document(document: dict[str, Any], asyncapi_3: Draft7Validator,
                                                 path: tuple[str, ...], value: object) -> None:
    broken = json.loads(json.dumps(document))
    parent = broken
    for step in path[:-1]:
        parent = parent[step]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert not asyncapi_3.is_valid(broken)


def references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    """What a reference of the document points at: a part of it, or a committed schema file."""
    if ref.startswith("#/"):
        node: Any = document
        for step in ref[2:].split("/"):
            node = node[step.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict)
        return node
    schema: dict[str, Any] = json.loads((DOC.parent / ref).read_text())
    return schema


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(references(document))
    files = {ref for ref in refs if not ref.startswith("#")}
    assert files == {f"../schemas/{path.name}" for path in (REPO_ROOT / "schemas").glob("*.json")
                     if path.stem not in ("QueueDoc", "PoolDoc", "CancellationDoc", "Snapshot")}
    for ref in refs:
        target = resolve(document, ref)
        if ref in files:
            assert target["$id"] == f"urn:orderbank:schema:{Path(ref).stem}"


def test_every_topic_has_a_channel_as_the_engine_creates_it(document: dict[str, Any]) -> None:
    settings = Settings()
    defaults = {name: value["default"] for name, value in document["components"]["parameters"].items()}
    channels = {channel["address"].format(**defaults): channel for channel in document["channels"].values()}
    for spec in Topics(settings).all():
        kafka = channels[spec.name]["bindings"]["kafka"]
        assert kafka["partitions"] == spec.partitions and kafka["replicas"] == settings.replication_factor
        config = kafka["topicConfiguration"]
        assert config["cleanup.policy"] == [spec.config["cleanup.policy"]]
        assert {key: str(value) for key, value in config.items() if key != "cleanup.policy"} == {
            key: value for key, value in spec.config.items() if key != "cleanup.policy"}
    assert len(channels) == len(Topics(settings).all())


def validates(schema: dict[str, Any], instance: Any) -> bool:
    """Keys are in AsyncAPI's schema format (JSON Schema draft 7); payload files name their draft."""
    return bool(validator_for(schema, default=Draft7Validator)(schema).is_valid(instance))


def fits(document: dict[str, Any], channel: str, key: object, value: object) -> list[str]:
    """The names of the channel's messages whose key schema and payload schema take this record."""
    out = []
    for name, ref in document["channels"][channel]["messages"].items():
        message = resolve(document, ref["$ref"])
        payload = resolve(document, message["payload"]["schema"]["$ref"])
        if validates(message["bindings"]["kafka"]["key"], key) and validates(payload, value):
            out.append(name)
    return out


@pytest.fixture(scope="module")
def launch() -> list[bytes]:
    return [orjson.dumps(doc) for doc in generate(preset("small", 400), 3)]


def test_input_events_fit_their_messages(document: dict[str, Any], launch: list[bytes]) -> None:
    for line in launch:
        event = orjson.loads(line)
        assert fits(document, "events", event["order_id"], event) == [event["type"]]


def test_the_records_a_worker_writes_fit_their_messages(document: dict[str, Any], launch: list[bytes]) -> None:
    bank, rejected = fold_lines(launch[: len(launch) // 2])
    assert not rejected and bank.queue.lanes
    publisher = Publisher(0, page_size=50)
    records = publisher.positions(bank, set()) + publisher.figures(bank) + publisher.lane_snapshots(bank)
    seen: dict[str, set[str]] = {}
    for projection, raw_key, raw_value in records:
        assert raw_value is not None  # a fresh publisher writes no tombstone
        key = raw_key.decode() if projection == "positions" else orjson.loads(raw_key)
        matches = fits(document, projection, key, orjson.loads(raw_value))
        assert len(matches) == 1, (projection, raw_key, raw_value)
        seen.setdefault(projection, set()).update(matches)
    assert seen == {"positions": {"Position"}, "queue": {"LaneHeader", "LanePage"}, "pool": {"PoolRow"},
                    "cancellations": {"WindowRate", "CohortRate", "OverallRate"}}


def test_dead_letter_headers_fit_their_schema(document: dict[str, Any]) -> None:
    message = document["components"]["messages"]["DeadLetter"]
    schema = resolve(document, message["headers"]["schema"]["$ref"])
    full = Rejection(Reason.SEQ_GAP, "seq", "seq 3 after 1", field="seq", order_id="YU7-000001", event_id="e-1")
    for rejection in (full, Rejection(Reason.MALFORMED_JSON, "json", "not valid JSON")):
        headers = {name: value.decode() for name, value in
                   dead_letter_headers("orderbank.events", Entry(2, 41, b"YU7-000001", b"{"), rejection)}
        assert validates(schema, headers), headers
    every = dict(dead_letter_headers("orderbank.events", Entry(2, 41, None, b"{"), full))
    assert set(schema["properties"]) == set(every) and set(headers) < set(every)  # optional ones left out
    assert not validates(schema, headers | {"orderbank.reason": "bored"})
    assert validates(message["bindings"]["kafka"]["key"], None)
