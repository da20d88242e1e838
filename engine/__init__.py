"""orderbank's edges: Kafka plumbing, the streaming worker, the command line and the local dev broker.

- `kafka/`: topics, bulk sink, producer API, transport, security, partitioning, a topic as a replay source.
- `stream/`: the Faust worker: ingest, frames, shards, runtime, recovery, publishing, HTTP views, metrics.
- `cli/`: the `orderbank` command, a module per command group.
- `dev/`: the local Apache Kafka launcher and child processes tied to their parent.

It imports the pure core (`orderbank.projections`) and the replay lab (`orderbank.replay`); neither imports it.
"""
