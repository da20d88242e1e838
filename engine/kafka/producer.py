"""The producer API: events into the input topic, validated, keyed by order_id, idempotent.

    async with EventProducer(Settings.from_env()) as producer:
        rejection = await producer.send(doc)          # an Event, a dict or raw JSON bytes
        if rejection: print(rejection.message)        # invalid events are never sent

Each event is validated by orderbank.projections.codec and written in its canonical encoding with the order_id
as key, so all events of an order land in one partition, in order. The Kafka producer is
idempotent (acks=all): retries after a broker fault do not duplicate. `assign_seq=True` fills a
missing `seq` with the next number for that order, counting the events this producer has sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer

from orderbank.engine.kafka.sink import producer_config
from orderbank.engine.kafka.topics import Topics, ensure
from orderbank.engine.settings import Settings
from orderbank.projections.codec import Rejection, decode, decode_obj, encode
from orderbank.projections.errors import StreamError
from orderbank.projections.events import Envelope


class EventProducer:
    """Validated, keyed publishing to the input topic of one settings object."""

    def __init__(self, settings: Settings, *, client_id: str = "orderbank-producer") -> None:
        self.settings = settings
        self.topic = Topics(settings).events.name
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._last_seq: dict[str, int] = {}
        self.sent = 0

    async def start(self) -> None:
        await ensure(self.settings, [Topics(self.settings).events])
        self._producer = AIOKafkaProducer(**producer_config(self.settings, self.client_id))
        await self._producer.start()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise StreamError("the producer is not started")
        return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # flushes what is pending

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def send(self, event: Envelope | Mapping[str, Any] | bytes, *, assign_seq: bool = False) -> Rejection | None:
        """Queue one event for sending; a Rejection (and nothing sent) if it is not valid."""
        if isinstance(event, bytes):
            checked = decode(event)
        elif isinstance(event, Mapping):
            doc = dict(event)
            if assign_seq and doc.get("seq") is None and isinstance(doc.get("order_id"), str):
                doc["seq"] = self._last_seq.get(doc["order_id"], 0) + 1
            checked = decode_obj(doc)
        else:
            checked = decode_obj(event.model_dump())
        if isinstance(checked, Rejection):
            return checked
        self._last_seq[checked.order_id] = max(self._last_seq.get(checked.order_id, 0), checked.seq)
        await self.producer.send(self.topic, encode(checked), key=checked.order_id.encode())
        self.sent += 1
        return None

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged by the broker."""
        await self.producer.flush()
