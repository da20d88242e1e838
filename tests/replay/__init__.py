"""Tests of the replay lab (orderbank.replay)."""
