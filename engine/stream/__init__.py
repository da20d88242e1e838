"""The streaming worker (a Faust app): ingest, frames, shards, runtime, recovery, publishing, views, metrics."""
