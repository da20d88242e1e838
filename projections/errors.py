"""The root of every error orderbank raises, and the kinds of failure, grouped by concern.

`except OrderbankError` catches every failure the project reports on purpose (tests/test_errors.py checks that
every exception class of orderbank derives from it). The root lives in the core because every layer may import
the core; a class that belongs to one module lives there, under its kind:

    OrderbankError
    ├── ConfigError (ValueError)   a value given to orderbank breaks its rule; the message names the value:
    │   │                          a synth preset, a replay's settings, a patience estimator, a model parameter
    │   ├── PolicyError            a policy spec (orderbank.projections.policies)
    │   ├── SettingsError          an ORDERBANK_* setting (orderbank.engine.settings)
    │   └── SecurityConfigError    an ORDERBANK_KAFKA_* setting (orderbank.engine.kafka.security)
    ├── LogError (ValueError)      an event log, or an event's field, that cannot be taken as it is
    ├── FrameError (ValueError)    bytes on the lanes topic that are no frame this code wrote (engine.stream.frames)
    ├── KafkaSecurityError         TLS/SASL of the Kafka clients (orderbank.engine.kafka.security): SecurityConfigError,
    │                              KafkaAuthError, KafkaConnectError and its KafkaTLSError
    ├── StreamError (RuntimeError) Kafka or the streaming engine could not do what was asked: a topic not created
    │   │                          or not readable, a record larger than a batch, a worker that exited
    │   └── Unavailable            a view cannot answer right now; retry (orderbank.engine.stream.views)
    └── BrokerError                the development broker could not be provisioned, started or stopped
                                   (orderbank.engine.dev.broker)

The ValueError bases are kept for code that catches ValueError: pydantic turns one raised in a validator into a
validation error (a setting's, which becomes a SettingsError, or an event's, which the codec rejects). The CLI
reports a ConfigError from an option as a usage error.
"""

from __future__ import annotations


class OrderbankError(Exception):
    """Something orderbank was asked to do failed; the message says what and, where it can, what to change."""


class ConfigError(OrderbankError, ValueError):
    """A value given to orderbank (a setting, an option, a spec, a parameter) breaks its rule."""


class LogError(OrderbankError, ValueError):
    """An event log, or an event's field, that cannot be taken as it is."""


class StreamError(OrderbankError, RuntimeError):
    """Kafka or the streaming engine could not do what was asked."""
