"""Tests of the local Apache Kafka launcher (orderbank.engine.dev)."""
