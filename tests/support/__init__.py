"""Helpers shared by the tests: event builders, worker processes, topics, the fold to compare with."""
