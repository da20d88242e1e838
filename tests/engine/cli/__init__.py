"""Tests of the `orderbank` command (orderbank.engine.cli)."""
