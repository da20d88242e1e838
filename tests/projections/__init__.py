"""Tests of the pure core (orderbank.projections)."""
