"""Kafka security settings load and validate as documented, and work against a real SASL_SSL listener.

The broker tests start the project's Kafka with its SASL_SSL (SCRAM-SHA-512 over TLS) listener; clients
are built only from `KafkaSecurity`, and every failure must be specific, fast and free of the password.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from orderbank.engine.dev.broker import Broker, SaslSslListener
from orderbank.engine.kafka.security import (
    FILE_VAR,
    KafkaAuthError,
    KafkaConnectError,
    KafkaSecurity,
    KafkaSecurityError,
    KafkaTLSError,
    KafkaUnreachableError,
    SecurityConfigError,
    check_connection,
    var,
)
from tests import REPO_ROOT
from tests.support.sasl import listener_env
from tests.support.topics import create_topic

PASSWORD = "pw-Zq8-do-not-leak"


def sasl_env(**values: str) -> dict[str, str]:
    return {var("security_protocol"): "SASL_PLAINTEXT", var("username"): "alice", var("password"): PASSWORD,
            **{var(k): v for k, v in values.items()}}


# --- settings: sources, validation, secrecy (no broker) ---------------------------------------------------

def test_env_vars_build_the_settings_and_keep_the_password_out_of_repr() -> None:
    security = KafkaSecurity.from_env(sasl_env(sasl_mechanism="scram-sha-256"))
    assert (security.security_protocol, security.sasl_mechanism, security.username) == \
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice")
    kwargs = security.aiokafka_kwargs()
    assert kwargs == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                      "sasl_plain_username": "alice", "sasl_plain_password": PASSWORD}
    for text in (repr(security), str(security), f"{security}", repr(security.faust_credentials())):
        assert PASSWORD not in text
    assert "alice" in repr(security)


def test_defaults_are_plaintext_without_credentials() -> None:
    security = KafkaSecurity.from_env({})
    assert security == KafkaSecurity()
    assert security.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None and security.ssl_context is None


def test_password_file_and_toml_file_with_paths_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(PASSWORD + "\n")  # as `echo pw > secret` writes it
    file = tmp_path / "kafka.toml"
    file.write_text('security_protocol = "SASL_SSL"\nusername = "alice"\npassword_file = "secret"\n'
                    "check_hostname = false\n")
    from_file = KafkaSecurity.from_file(file)
    assert from_file.password == SecretStr(PASSWORD) and from_file.check_hostname is False
    assert from_file.ssl_context is not None and not from_file.ssl_context.check_hostname
    # Variables override the file they name.
    env = {FILE_VAR: str(file), var("username"): "bob"}
    assert KafkaSecurity.from_env(env).username == "bob"
    assert KafkaSecurity.from_env({var("password_file"): str(tmp_path / "secret"),
                                   **sasl_env(password="")}).password == SecretStr(PASSWORD)


@pytest.mark.parametrize(("values", "message"), [
    ({"security_protocol": "SASL_TLS"}, "ORDERBANK_KAFKA_SECURITY_PROTOCOL: 'SASL_TLS' is not one of"),
    ({"sasl_mechanism": "SCRAM-SHA-1"}, "ORDERBANK_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-1' is not one of"),
    ({"username": ""}, "ORDERBANK_KAFKA_USERNAME: required when ORDERBANK_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT"),
    ({"password": ""}, "ORDERBANK_KAFKA_PASSWORD or ORDERBANK_KAFKA_PASSWORD_FILE: required when"),
    ({"password_file": "/nonexistent/pw"}, "ORDERBANK_KAFKA_PASSWORD and ORDERBANK_KAFKA_PASSWORD_FILE: both set"),
    ({"password": "", "password_file": "/nonexistent/pw"}, "ORDERBANK_KAFKA_PASSWORD_FILE: cannot read /nonex"),
    ({"security_protocol": "PLAINTEXT"}, "ORDERBANK_KAFKA_USERNAME: set, but ORDERBANK_KAFKA_SECURITY_PROTOCOL is "
                                         "PLAINTEXT, which sends no credentials"),
    ({"cafile": "/etc/ca.pem"}, "ORDERBANK_KAFKA_CAFILE: set, but ORDERBANK_KAFKA_SECURITY_PROTOCOL is "
                                "SASL_PLAINTEXT, which does not use TLS"),
    ({"security_protocol": "SASL_SSL", "cafile": "/nonexistent/ca.pem"},
     "ORDERBANK_KAFKA_CAFILE: cannot load CA certificates from /nonexistent/ca.pem"),
    ({"security_protocol": "SASL_SSL", "keyfile": "/k.pem"}, "ORDERBANK_KAFKA_KEYFILE: needs ORDERBANK_KAFKA_CERTFILE"),
    ({"security_protocol": "SASL_SSL", "certfile": "/nonexistent/c.pem"},
     "ORDERBANK_KAFKA_CERTFILE: cannot load the client certificate /nonexistent/c.pem"),
    ({"security_protocol": "SASL_SSL", "check_hostname": "maybe"},
     "ORDERBANK_KAFKA_CHECK_HOSTNAME: 'maybe' is not a boolean"),
])
def test_bad_settings_name_the_variable_and_the_rule(values: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError) as info:
        KafkaSecurity.from_env(sasl_env(**values))
    assert message in str(info.value)
    assert PASSWORD not in str(info.value)
    assert isinstance(info.value, KafkaSecurityError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(("text", "message"), [
    ('usrname = "alice"', "unknown key 'usrname'"),
    ("username = 7", "username must be a string"),
    ('username = "alice', "not valid TOML"),
])
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "kafka.toml"
    file.write_text(text)
    with pytest.raises(SecurityConfigError, match=message) as info:
        KafkaSecurity.from_file(file)
    assert str(file) in str(info.value)
    with pytest.raises(SecurityConfigError, match=f"{FILE_VAR}: cannot read"):
        KafkaSecurity.from_env({FILE_VAR: str(tmp_path / "missing.toml")})


async def test_nothing_listening_is_a_connect_error_without_a_protocol_hint() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(KafkaUnreachableError) as info:
        await check_connection(f"127.0.0.1:{port}", KafkaSecurity(), timeout=5)
    assert str(info.value) == f"cannot reach Kafka at 127.0.0.1:{port} (connection refused)"
    with pytest.raises(KafkaConnectError, match="'broker' is not host:port"):
        await check_connection("broker", KafkaSecurity())


# --- against the broker's SASL_SSL listener -----------------------------------------------------------------

def security_file(listener: SaslSslListener, folder: Path) -> Path:
    file = folder / "kafka.toml"
    values = {"security_protocol": "SASL_SSL", "username": listener.username, "password": listener.password,
              "cafile": str(listener.cafile)}
    # A JSON string is a valid TOML string.
    file.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    return file


async def round_trip(bootstrap: str, security: KafkaSecurity, value: bytes) -> bytes:
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic, **security.aiokafka_kwargs())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **security.aiokafka_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                                auto_offset_reset="earliest", **security.aiokafka_kwargs())
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=30)
        return msg.value  # type: ignore[no-any-return]
    finally:
        await consumer.stop()


@pytest.mark.broker
async def test_producer_and_consumer_round_trip_through_sasl_ssl(
        sasl_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    listener = sasl_broker.sasl_ssl
    security = KafkaSecurity.from_env(listener_env(listener))
    assert KafkaSecurity.from_file(security_file(listener, tmp_path)) == security
    await check_connection(f"127.0.0.1:1,{listener.bootstrap}", security)  # the first server that answers will do
    assert await round_trip(listener.bootstrap, security, b"sealed") == b"sealed"
    assert listener.password not in caplog.text


@pytest.mark.broker
@pytest.mark.parametrize(("change", "value"), [
    ("password", "wrong-Zq8-password"),
    ("username", "nobody"),
    ("sasl_mechanism", "SCRAM-SHA-256"),  # the listener offers only 512
])
async def test_wrong_credentials_fail_fast_with_a_clear_message(
        sasl_broker: Broker, caplog: pytest.LogCaptureFixture, change: str, value: str) -> None:
    caplog.set_level(logging.DEBUG)
    listener = sasl_broker.sasl_ssl
    security = KafkaSecurity.from_env(listener_env(listener, **{change: value}))
    started = time.monotonic()
    with pytest.raises(KafkaAuthError, match="authentication failed") as info:
        await check_connection(listener.bootstrap, security)
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert listener.bootstrap in message and "ORDERBANK_KAFKA_PASSWORD" in message
    assert info.value.__context__ is None  # the client's frames, which hold the password, are not chained on
    for secret in (listener.password, "wrong-Zq8-password"):
        assert secret not in message and secret not in caplog.text


@pytest.mark.broker
async def test_a_ca_that_did_not_sign_the_broker_fails_the_tls_handshake(sasl_broker: Broker) -> None:
    listener = sasl_broker.sasl_ssl
    security = KafkaSecurity.from_env(listener_env(listener, cafile=""))  # the system's CAs, not the test CA
    with pytest.raises(KafkaTLSError, match=r"certificate was rejected .*ORDERBANK_KAFKA_CAFILE") as info:
        await check_connection(listener.bootstrap, security, timeout=10)
    assert listener.password not in str(info.value)


@pytest.mark.broker
@pytest.mark.parametrize("plain_client", [True, False])
async def test_a_protocol_mismatch_fails_fast_with_a_hint(sasl_broker: Broker, plain_client: bool) -> None:
    listener = sasl_broker.sasl_ssl
    if plain_client:  # PLAINTEXT client at the SASL_SSL port
        bootstrap, security = listener.bootstrap, KafkaSecurity()
    else:  # SASL_SSL client at the PLAINTEXT port
        bootstrap, security = sasl_broker.bootstrap, KafkaSecurity.from_env(listener_env(listener))
    started = time.monotonic()
    with pytest.raises(KafkaConnectError, match=r"ORDERBANK_KAFKA_SECURITY_PROTOCOL=.* what this listener expects"):
        await check_connection(bootstrap, security, timeout=5)
    assert time.monotonic() - started < 10


@pytest.mark.broker
def test_a_faust_worker_consumes_and_produces_through_sasl_ssl(sasl_broker: Broker, tmp_path: Path) -> None:
    listener = sasl_broker.sasl_ssl
    # The worker reads its credentials from a file, not from its environment.
    env = {**os.environ, FILE_VAR: str(security_file(listener, tmp_path)), "T_BOOTSTRAP": listener.bootstrap,
           "T_DATA": str(tmp_path), "T_TOPIC": f"faust-{uuid.uuid4().hex[:8]}"}
    code = "from tests.engine.kafka.test_security import faust_worker; faust_worker()"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "received: through sasl_ssl" in output  # the worker sends prints to its log (stderr)
    assert listener.password not in output


def faust_worker() -> None:
    """A minimal Faust worker (run in a subprocess): a task sends one message, an agent receives it, exit."""
    import faust
    from faust.worker import Worker

    app = faust.App(f"sec-{uuid.uuid4().hex[:8]}", broker=f"kafka://{os.environ['T_BOOTSTRAP']}",
                    broker_credentials=KafkaSecurity.from_env().faust_credentials(), web_enabled=False,
                    store="memory://", datadir=os.environ["T_DATA"], topic_partitions=1)
    # internal: Faust creates it (through the same credentials) before subscribing, so no rebalance is needed
    topic = app.topic(os.environ["T_TOPIC"], value_type=bytes, value_serializer="raw", internal=True, partitions=1)

    @app.agent(topic)
    async def receive(stream: Any) -> None:
        async for value in stream:
            print(f"received: {value.decode()}", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's own clean shutdown, as on Ctrl-C

    async def send() -> None:
        await topic.send(value=b"through sasl_ssl")

    app.task(send)

    Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()


@pytest.mark.broker
async def test_restart_keeps_the_listener_and_its_user(sasl_broker: Broker) -> None:
    before = sasl_broker.sasl_ssl
    await asyncio.to_thread(sasl_broker.restart)
    assert sasl_broker.sasl_ssl == before
    await check_connection(before.bootstrap, KafkaSecurity.from_env(listener_env(before)))
