"""`orderbank watch`: a topic's records as they arrive, for people or for tools.

For people, one line a record: times to the second, money in major units with its currency (as `fold` shows it),
an ETA as its 80% band or "no ETA yet", a dead letter's reason, rule, source offset and original bytes with
anything that could steer a terminal escaped. For tools (`--json`), one compact JSON object a line, for `jq`:
`{"topic", "partition", "offset", "key", "value"}` with the record's value as the topic's contract has it
(docs/asyncapi.yaml); a dead letter's value is its original bytes as text (null when they are not UTF-8) and in
`value_base64`, and its headers are under `headers`. A topic a worker has not created yet is waited for (a watch may
start before the worker). It exits with 0 when stopped by Ctrl-C or `--for`, with 1 when the topic never came
within `--for`, and otherwise says what failed (orderbank.engine.cli.failure).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, TypeAlias

import orjson
import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from orderbank.engine.cli.connect import Bootstrap, Prefix, kafka_settings
from orderbank.engine.cli.output import err
from orderbank.engine.kafka.topics import Topics, TopicSpec, check, partitions_of
from orderbank.engine.settings import Settings
from orderbank.projections.errors import StreamError
from orderbank.replay.render import band, money, pct, when

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class Watched(StrEnum):
    QUEUE = "queue"
    POOL = "pool"
    CANCELLATIONS = "cancellations"
    DEADLETTER = "deadletter"


class Start(StrEnum):
    EARLIEST = "earliest"
    LATEST = "latest"


TOPIC = {Watched.QUEUE: "positions", Watched.POOL: "pool", Watched.CANCELLATIONS: "cancellations",
         Watched.DEADLETTER: "deadletter"}
"""The topic (an attribute of orderbank.engine.kafka.topics.Topics) each view reads."""


def watch(
    what: Annotated[Watched, typer.Argument(
        help="queue: each order's position and ETA; pool: prepayment pool rows; cancellations: cancellation "
             "rates; deadletter: rejected input")],
    order: Annotated[str | None, typer.Option(help="only this order's records (queue, deadletter)")] = None,
    seconds: Annotated[float | None, typer.Option("--for", help="stop after this many seconds")] = None,
    start: Annotated[Start, typer.Option(
        "--from", help="earliest: every record the topic holds, then new ones; latest: new ones only")]
    = Start.EARLIEST,
    json_lines: Annotated[bool, typer.Option(
        "--json", help="one compact JSON object per line (topic, partition, offset, key, value), for jq")] = False,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
) -> None:
    """Print a projection topic's records (or the dead letters) as they arrive, until Ctrl-C or --for."""
    if order is not None and what in (Watched.POOL, Watched.CANCELLATIONS):
        raise typer.BadParameter(f"--order works with queue and deadletter, not {what}")
    settings = kafka_settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    show = partial(as_json, raw=what is Watched.DEADLETTER) if json_lines else LINES[what]
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends: not a failure
        asyncio.run(_watch(settings, TOPIC[what], order, seconds, start, show))


async def _watch(settings: Settings, projection: str, order: str | None, seconds: float | None, start: Start,
                 show: Callable[[Record], str | None]) -> None:
    deadline = time.monotonic() + seconds if seconds is not None else None
    spec = getattr(Topics(settings), projection)
    await _topic_exists(settings, spec, deadline)
    partitions = await partitions_of(settings, spec.name)  # the dead letters' may be more than the engine's one
    consumer = AIOKafkaConsumer(**settings.kafka_kwargs(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset=start.value)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(spec.name, p) for p in range(partitions)])
        wanted = order.encode() if order is not None else None
        while deadline is None or time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=250)).values():
                for record in records:
                    if wanted is None or wanted in (record.key, dict(record.headers).get("orderbank.order_id")):
                        line = show(record)
                        if line is not None:
                            typer.echo(line)
    finally:
        await consumer.stop()


async def _topic_exists(settings: Settings, spec: TopicSpec, deadline: float | None) -> None:
    """Return once the topic exists (checked, never created: engine/kafka/topics.py), saying that it waits."""
    creates = "a worker creates it (`orderbank worker`, or `orderbank up`)"
    waiting = False
    while not await check(settings, [spec]):
        if deadline is not None and time.monotonic() >= deadline:
            raise StreamError(f"topic {spec.name} does not exist yet: {creates}")
        if not waiting:
            err.print(f"waiting for topic {spec.name}: {creates}", markup=False)
            waiting = True
        await asyncio.sleep(1.0)


def as_json(record: Record, raw: bool = False) -> str:
    """The record as one compact JSON object (see the module's docstring); `raw`: its value is bytes as they came
    (a dead letter's), with its headers, not a JSON document."""
    doc: dict[str, Any] = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                           "key": _key(record.key)}
    if raw:
        doc["headers"] = {name.removeprefix("orderbank."): value.decode("utf-8", "replace")
                          for name, value in record.headers}
        doc["value"] = _text(record.value)
        doc["value_base64"] = base64.b64encode(record.value or b"").decode()
    else:
        doc["value"] = None if record.value is None else orjson.Fragment(record.value)
    return orjson.dumps(doc).decode()


def _key(key: bytes | None) -> Any:
    """A key as JSON: the projections' compound keys are JSON arrays; an order id or a hash is text."""
    if key is None:
        return None
    return orjson.Fragment(key) if key.startswith(b"[") else key.decode("utf-8", "replace")


def _text(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode()
    except UnicodeDecodeError:
        return None


def escaped(text: str, limit: int = 200) -> str:
    """Text safe to print: what is not printable (newlines, a terminal's escape sequences) written as Python
    escapes, and cut after `limit` characters."""
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return safe + (f"... ({len(text):,} characters)" if len(text) > limit else "")


def _position(record: Record) -> str | None:
    if record.value is None:
        return None
    doc = orjson.loads(record.value)
    head = f"{when(doc['as_of'])}  {doc['order_id']}  {doc['lane']}"
    if doc["position"] is None:
        return f"{head}  {doc['status']}"
    eta = f"ETA {band(doc)}, basis {doc['eta_basis']}" if doc["eta"] is not None else "no ETA yet"
    return f"{head}  position {doc['position']:,} of {doc['open_in_lane']:,}, {eta}"


def _pool(record: Record) -> str | None:
    if record.value is None:
        return None
    row = orjson.loads(record.value)
    currency = row["currency"]
    return (f"{row['lane']} {row['trim']} {row['cohort']}: {row['open_orders']:,} open, held "
            f"{money(row['held'], currency)} (deposits {money(row['deposits'])}, balances {money(row['balances'])}, "
            f"refunds owed {money(row['refunds_owed'])}), demanded unpaid "
            f"{money(row['demanded_outstanding'], currency)}, overdue {row['overdue_orders']:,} orders "
            f"{money(row['overdue_amount'], currency)}, realised {money(row['realised'], currency)}")


def _cancellations(record: Record) -> str | None:
    if record.value is None or record.key is None:
        return None
    key, doc = orjson.loads(record.key), orjson.loads(record.value)
    shard, kind = key[0], key[1]
    trim = "all trims" if doc.get("trim") == "*" else f"trim {doc.get('trim')}"
    if kind == "window":
        return (f"shard {shard}, last {doc['window_days']} days, {trim}: {doc['cancelled']:,} cancelled of "
                f"{doc['placed']:,} placed ({pct(doc['rate'])})")
    if kind == "cohort":
        return (f"shard {shard}, placed in {doc['cohort']}, {trim}: {doc['cancelled']:,} cancelled, "
                f"{doc['delivered']:,} delivered, {doc['open']:,} open of {doc['placed']:,} "
                f"({pct(doc['share_cancelled'])} cancelled)")
    return f"shard {shard}, overall: {doc['cancelled']:,} cancelled of {doc['placed']:,} placed ({pct(doc['rate'])})"


def _dead_letter(record: Record) -> str:
    said = {name.removeprefix("orderbank."): value.decode("utf-8", "replace") for name, value in record.headers}
    value = (record.value or b"").decode("utf-8", "replace")
    where = f"field {said['field']}, " if "field" in said else ""
    written = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.timestamp / 1000))
    return (f"{written}  {said.get('reason', '?')} ({where}rule {said.get('rule', '?')}): "
            f"{escaped(said.get('message', ''))}; order {escaped(said.get('order_id', '-'))}; from "
            f"{said.get('source.topic', '?')} partition {said.get('source.partition', '?')} offset "
            f"{said.get('source.offset', '?')}; {len(record.value or b''):,} bytes: {escaped(value, 1000)}")


LINES: dict[Watched, Callable[[Record], str | None]] = {
    Watched.QUEUE: _position, Watched.POOL: _pool, Watched.CANCELLATIONS: _cancellations,
    Watched.DEADLETTER: _dead_letter}


def register(app: typer.Typer) -> None:
    """Add `watch` to the `orderbank` app."""
    app.command()(watch)
