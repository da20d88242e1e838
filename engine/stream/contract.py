"""The contract of the engine's topics for their consumers, generated from the code.

`json_schemas()` gives the JSON Schema of every event, projection document and topic record, each with its
`$id` (`urn:orderbank:schema:<Name>`: a name, not a place to fetch it from) and written to `schemas/` by
`orderbank schema`. `asyncapi()` gives an AsyncAPI 3.0.0 document of every topic: its address (with the
topic prefix and app id as parameters), partitioning, replication and configuration as Kafka bindings (from
orderbank.engine.kafka.topics), and its messages with their key schemas and payloads referring to those
JSON Schema files; `orderbank asyncapi` writes it to docs/asyncapi.yaml. Tests check that the committed
files are what this code generates, that the document is valid AsyncAPI, and that real records validate.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from pydantic import BaseModel

from orderbank.engine.kafka.topics import Topics, TopicSpec
from orderbank.engine.settings import ENV_PREFIX, Settings
from orderbank.engine.stream.records import (
    DeadLetterHeaders,
    LaneHeader,
    LanePage,
    OverallRate,
    PoolRow,
    Position,
)
from orderbank.projections.events import EVENT_TYPES, Envelope, type_name
from orderbank.projections.schema import DOCS, CohortRate, WindowRate

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
PAYLOAD_FORMAT = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING = "0.5.0"
RECORDS: tuple[type[BaseModel], ...] = (Position, LaneHeader, LanePage, PoolRow, WindowRate, CohortRate,
                                        OverallRate, DeadLetterHeaders)
"""The records of the topics a worker writes, besides the events it reads."""


def schema_id(model: type[BaseModel]) -> str:
    return f"urn:orderbank:schema:{model.__name__}"


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event, projection document and topic record, by file name."""
    return {f"{model.__name__}.json": {"$schema": JSON_SCHEMA, "$id": schema_id(model), **model.model_json_schema()}
            for model in (*EVENT_TYPES, *DOCS, *RECORDS)}


# Keys are written in AsyncAPI's own schema format (JSON Schema draft 7): a tuple is `items` as a list.
def _tuple(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": list(items), "minItems": len(items), "additionalItems": False,
            "description": "a JSON array, compact UTF-8"}


_TEXT: dict[str, Any] = {"type": "string"}
_ORDER_ID = {k: v for k, v in Envelope.model_json_schema()["properties"]["order_id"].items() if k != "title"}
_SHARD = {"type": "integer", "minimum": 0, "description": "the shard (partition) that wrote the record"}
_PARAMETERS = {
    "prefix": ("topic_prefix", "the topic prefix of the deployment"),
    "app_id": ("app_id", "the app id: internal topics are the app's own"),
}


def asyncapi(schemas: str = "../schemas/") -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the engine's topics; payloads refer to `<schemas><Name>.json`."""
    defaults = Settings.model_construct()  # the defaults alone: the document must not depend on the environment
    topics = Topics(Settings.model_construct(topic_prefix="{prefix}", app_id="{app_id}"))

    def message(model: type[BaseModel], key: dict[str, Any], summary: str) -> dict[str, Any]:
        return {"name": model.__name__, "summary": summary, "description": (model.__doc__ or "").strip(),
                "contentType": "application/json",
                "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": f"{schemas}{model.__name__}.json"}},
                "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}}}

    messages = {type_name(event): message(event, _ORDER_ID, "an event of the input (key: order_id)")
                for event in EVENT_TYPES}
    messages |= {
        "Position": message(Position, _ORDER_ID, "an order's queue position bucket"),
        "LaneHeader": message(LaneHeader, _tuple({"const": "lane"}, _TEXT), "a lane snapshot's header"),
        "LanePage": message(LanePage, _tuple({"const": "page"}, _TEXT, {"type": "integer", "minimum": 0}),
                            "a page of a lane snapshot's positions"),
        "PoolRow": message(PoolRow, _tuple(_TEXT, _TEXT, _TEXT, _TEXT), "a prepayment pool row"),
        "WindowRate": message(WindowRate, _tuple(_SHARD, {"const": "window"}, {"type": "integer"}, _TEXT),
                              "a cancellation rate over a trailing window"),
        "CohortRate": message(CohortRate, _tuple(_SHARD, {"const": "cohort"}, _TEXT, _TEXT),
                              "the cancellations of a weekly cohort"),
        "OverallRate": message(OverallRate, _tuple(_SHARD, {"const": "overall"}), "a shard's overall cancellations"),
        "DeadLetter": {
            "name": "DeadLetter", "summary": "a rejected input message",
            "description": "The input message as it came, key and value byte for byte (the value need not be "
                           "JSON); why it was rejected and where it came from are in its headers.",
            "contentType": "application/octet-stream",
            "headers": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": f"{schemas}DeadLetterHeaders.json"}},
            "bindings": {"kafka": {"key": {"type": ["string", "null"], "description": "the input message's key"},
                                   "bindingVersion": KAFKA_BINDING}}},
    }
    public = {"events": list(map(type_name, EVENT_TYPES)), "positions": ["Position"],
              "queue": ["LaneHeader", "LanePage"], "pool": ["PoolRow"],
              "cancellations": ["WindowRate", "CohortRate", "OverallRate"], "deadletter": ["DeadLetter"]}
    channels = {name: _channel(spec, public.get(name, []), defaults) for name, spec in _specs(topics).items()}
    operations = {
        f"{'receive' if name == 'events' else 'send'}_{name}": {
            "action": "receive" if name == "events" else "send", "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{m}"} for m in names]}
        for name, names in public.items()}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "orderbank topics", "version": version("orderbank"),
            "description": "The Kafka topics of an orderbank deployment, from the worker's side: it receives the "
                           "events and sends the projections and dead letters. Generated by `orderbank asyncapi` "
                           "from the code. Partition and replica counts are the defaults of ORDERBANK_* settings; "
                           "a projection record goes to the partition of its shard (the lane's), not to its "
                           "key's hash. Internal topics (lanes, the bank changelog) carry no contract for other "
                           "readers."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {
            "host": "{bootstrap}", "protocol": "kafka",
            "description": f"the brokers; TLS and SASL/SCRAM from {ENV_PREFIX}KAFKA_* (docs/security.md)",
            "variables": {"bootstrap": {"default": defaults.bootstrap_servers,
                                        "description": f"host:port of a broker ({ENV_PREFIX}BOOTSTRAP_SERVERS)"}}}},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "parameters": {name: {"default": getattr(defaults, field),
                                  "description": f"{text} ({ENV_PREFIX}{field.upper()})"}
                           for name, (field, text) in _PARAMETERS.items()}},
    }


def _specs(topics: Topics) -> dict[str, TopicSpec]:
    """The topics by their attribute names on `Topics`."""
    return {name: spec for name, spec in vars(topics).items() if isinstance(spec, TopicSpec)}


def _channel(spec: TopicSpec, messages: list[str], defaults: Settings) -> dict[str, Any]:
    partitions = (f"one per shard ({ENV_PREFIX}SHARD_PARTITIONS), shard p alone writes partition p"
                  if spec.fixed_partitions else f"any count works; the engine creates {spec.partitions}")
    channel: dict[str, Any] = {
        "address": spec.name, "description": f"{spec.doc}. Partitions: {partitions}.",
        "parameters": {name: {"$ref": f"#/components/parameters/{name}"}
                       for name in _PARAMETERS if f"{{{name}}}" in spec.name},
        "bindings": {"kafka": {"partitions": spec.partitions, "replicas": defaults.replication_factor,
                               "topicConfiguration": _configuration(spec), "bindingVersion": KAFKA_BINDING}}}
    if messages:
        channel["messages"] = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    return channel


def _configuration(spec: TopicSpec) -> dict[str, Any]:
    """The topic's configuration in the binding's types: numbers as numbers, the cleanup policy a list."""
    out: dict[str, Any] = {}
    for key, value in spec.config.items():
        if key == "cleanup.policy":
            out[key] = value.split(",")
        else:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = float(value)
    return out
