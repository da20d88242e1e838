"""Tests of the Faust worker (orderbank.engine.stream): its pure parts, and end to end on a real broker."""
