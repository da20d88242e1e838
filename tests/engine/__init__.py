"""Tests of orderbank.engine."""
