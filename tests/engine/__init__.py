"""Tests of the engine (orderbank.engine): settings and deployment here, its packages below."""
