"""The Kafka plumbing: topics, the bulk sink, the producer API, the transport, security, partitioning."""
