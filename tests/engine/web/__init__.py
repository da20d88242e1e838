"""Tests of the pages (orderbank.engine.web): view-models, HTTP, and in a real browser."""
