"""Clients of the test broker's SASL_SSL listener (orderbank.engine.dev.broker.SaslSslListener)."""

from __future__ import annotations

from orderbank.engine.dev.broker import SaslSslListener
from orderbank.engine.kafka.security import var


def listener_env(listener: SaslSslListener, **changes: str) -> dict[str, str]:
    """The ORDERBANK_KAFKA_* variables of a client of the listener; a change to "" leaves a variable out."""
    env = {"security_protocol": "SASL_SSL", "sasl_mechanism": listener.mechanism, "username": listener.username,
           "password": listener.password, "cafile": str(listener.cafile), **changes}
    return {var(k): v for k, v in env.items() if v}
