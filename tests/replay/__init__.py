"""Tests of the replay lab (orderbank.replay), one module per module of it."""
