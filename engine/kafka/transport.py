"""The Kafka transport of the engine's Faust app: Faust's aiokafka transport, with a short fetch wait.

aiokafka sends one fetch request per broker for all the partitions it reads, and sends no other to
that broker while one is in flight. Faust creates its consumer with `fetch_max_wait_ms=1500`, so a
fetch that asked only for partitions without new data (a worker's idle lanes partitions, or a busy
one whose records were still buffered when the request was built) holds the broker for 1.5 s; the
busy partition's next frames wait behind it, and the shard sat idle for ~1.2 s every 8 MiB of frames
(bench/stream.py: 22,000 events/s with the wait, 47,000 without). The engine's consumer waits at
most FETCH_MAX_WAIT_MS instead; an idle worker then sends a few more empty fetches a second.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes no setting for it; the consumer hands it to its fetcher when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
