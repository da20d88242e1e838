"""Tests of the pure core (orderbank.projections), one module per module of it."""
