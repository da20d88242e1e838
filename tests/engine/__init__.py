"""Tests of the engine (orderbank.engine)."""
