"""Tests of the Kafka clients (orderbank.engine.kafka): security, the sink, the replay source."""
