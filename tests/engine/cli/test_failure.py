"""A command that fails says what went wrong and what to do in a line or two, with an exit status that is not 0,
and no traceback unless `orderbank --debug` asks for one (orderbank.engine.cli.failure): no broker at the address,
a bad file, a bad option or setting, an interruption, a bug."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from typer.testing import CliRunner

from orderbank.engine.cli import core
from orderbank.engine.cli.app import app
from orderbank.engine.cli.failure import explain
from orderbank.engine.dev.broker import Broker, BrokerError
from orderbank.engine.dev.ports import free_port
from orderbank.engine.kafka.security import KafkaUnreachableError, var
from orderbank.engine.settings import Settings
from orderbank.projections.bank import BankSettings
from orderbank.projections.policies import parse_policy
from tests.support.logfiles import launch
from tests.support.sasl import listener_env

runner = CliRunner()
START_ONE = "start one with `orderbank broker start` or pass --bootstrap"


def said(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "launch.jsonl"
    launch(path, orders=50)
    return path


@pytest.fixture
def no_local_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty per-user cache: no local broker to find, whatever runs on this machine."""
    monkeypatch.setenv("ORDERBANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ORDERBANK_BOOTSTRAP_SERVERS", raising=False)


KAFKA_COMMANDS = {
    "produce": lambda log: ["produce", str(log)],
    "watch": lambda log: ["watch", "queue", "--for", "1"],
    "replay --topic": lambda log: ["replay", "--topic", "orderbank.events", "-o", str(log.parent / "report")],
    "worker": lambda log: ["worker"],
}


@pytest.mark.usefixtures("no_local_broker")
@pytest.mark.parametrize("command", sorted(KAFKA_COMMANDS))
@pytest.mark.parametrize("given", ["option", "environment"])
def test_no_kafka_at_the_address_is_one_line_saying_how_to_start_one(log: Path, command: str, given: str) -> None:
    address = f"127.0.0.1:{free_port()}"
    args = KAFKA_COMMANDS[command](log)
    option = ["--bootstrap", address] if given == "option" else []
    result = runner.invoke(app, [*args, *option], env={"ORDERBANK_BOOTSTRAP_SERVERS": address}
                           if given == "environment" else {})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert said(result.stderr) == [
        f"orderbank {args[0]}: cannot reach Kafka at {address} (connection refused): {START_ONE}"]
    assert not (log.parent / "report").exists()


@pytest.mark.parametrize("command", sorted(KAFKA_COMMANDS))
def test_wrong_credentials_are_one_line_naming_the_settings_to_check(sasl_broker: Broker, log: Path,
                                                                     command: str) -> None:
    listener = sasl_broker.sasl_ssl
    wrong = "wrong-Zq8-cli-password"
    args = [*KAFKA_COMMANDS[command](log), "--bootstrap", listener.bootstrap]
    result = runner.invoke(app, args, env=listener_env(listener, password=wrong))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    (line,) = said(result.stderr)
    assert line.startswith(f"orderbank {args[0]}: authentication failed at {listener.bootstrap} for user "
                           f"'{listener.username}' with {listener.mechanism}: ")
    assert line.endswith(f"check {var('username')}, {var('password')} and {var('sasl_mechanism')}")
    assert wrong not in result.output and listener.password not in result.output


@pytest.mark.usefixtures("no_local_broker")
def test_up_with_no_kafka_at_the_address_starts_nothing_and_says_so() -> None:
    address = f"127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, "-m", "orderbank.engine.cli", "up", "--bootstrap", address],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and not done.stdout
    assert said(done.stderr) == [f"orderbank up: cannot reach Kafka at {address} (connection refused): {START_ONE}"]


@pytest.mark.usefixtures("no_local_broker")
def test_debug_shows_the_failure_itself(log: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["--debug", "produce", str(log), "--bootstrap", address])
    assert isinstance(result.exception, KafkaUnreachableError) and result.exit_code == 1


def test_an_error_of_many_lines_is_its_first_and_where_to_see_the_rest() -> None:
    failed = BrokerError("broker exited with 1 while starting (its log: /c/broker/broker.log):\nERROR ...\n...")
    assert explain(failed, None) == (["broker exited with 1 while starting (its log: /c/broker/broker.log)",
                                      "run it again as `orderbank --debug ...` for the details"], 1)


def test_a_kafka_clients_own_error_is_said_with_why_kafka_could_not_be_used() -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings.from_env({}, bootstrap_servers=address)
    assert explain(KafkaConnectionError(f"Unable to bootstrap from [('127.0.0.1', {address})]"), settings) == (
        [f"cannot reach Kafka at {address} (connection refused): {START_ONE}"], 1)
    assert explain(KafkaConnectionError("Unable to bootstrap"), None) == (
        ["Kafka failed: KafkaConnectionError: Unable to bootstrap"], 1)


@pytest.mark.parametrize(("args", "env", "line"), [
    (["synth", "--preset", "big", "-o", "{tmp}/x.jsonl"], {},
     "orderbank synth: unknown preset 'big'; known: small, yu7"),
    (["fold", "{log}", "--policy", "lottery"], {},
     "orderbank fold: unknown policy 'lottery'; known: bounded-overtake, fifo, high-trim-first, paid-first"),
    (["eta", "backtest", "{log}", "--policy", "bounded-overtake:k=-1"], {},
     "orderbank eta backtest: bounded-overtake: k must be >= 0, got -1"),
    (["replay", "{log}", "--patience", "guess", "-o", "{tmp}/report"], {},
     "orderbank replay: patience estimator 'guess': use one of km, weibull"),
    (["produce", "{log}"], {"ORDERBANK_WEB_PORT": "0"},
     "orderbank produce: setting web_port (environment variable ORDERBANK_WEB_PORT): Input should be greater than or "
     "equal to 1"),
    (["produce", "{log}"], {"ORDERBANK_BOOTSTRAP": "127.0.0.1:9092"},
     "orderbank produce: unknown variable ORDERBANK_BOOTSTRAP (did you mean ORDERBANK_BOOTSTRAP_SERVERS?)"),
    (["produce", "{log}", "--bootstrap", "kafka"], {}, "orderbank produce: setting bootstrap_servers: 'kafka' is not "
                                                     "host:port"),
], ids=["preset", "policy", "policy-parameter", "patience", "setting", "misspelt-variable", "bootstrap"])
def test_a_bad_value_is_one_line_naming_it_with_status_2(log: Path, tmp_path: Path, args: list[str],
                                                         env: dict[str, str], line: str) -> None:
    result = runner.invoke(app, [arg.format(tmp=tmp_path, log=log) for arg in args], env=env)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert said(result.stderr) == [line]
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "report").exists()


def test_a_bad_time_says_what_a_time_is(log: Path) -> None:
    result = runner.invoke(app, ["serve", str(log), "--until", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is not a time: give a date (2025-10-26) or an ISO 8601 time" in " ".join(
        line.strip("│ ") for line in result.stderr.splitlines())


def test_a_file_that_cannot_be_written_is_one_line_naming_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--orders", "10", "-o", str(tmp_path)])
    assert result.exit_code == 1 and said(result.stderr) == [f"orderbank synth: {tmp_path}: Is a directory"]


def test_a_port_in_use_is_one_line_saying_what_to_do(log: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", str(log), "--port", str(port)])
    assert result.exit_code == 1
    assert said(result.stderr) == [f"orderbank serve: error while attempting to bind on address ('127.0.0.1', {port}): "
                                   "address already in use: choose another port, or stop what listens there"]


def test_a_bug_is_two_lines_and_an_interruption_one(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(spec: str) -> None:
        raise RuntimeError(f"boom at {spec}")

    monkeypatch.setattr(core, "parse_policy", boom)
    result = runner.invoke(app, ["fold", str(log)])
    assert result.exit_code == 1 and said(result.stderr) == [
        "orderbank fold: unexpected RuntimeError: boom at fifo",
        "this is a bug: run it again as `orderbank --debug ...` to see where, and report it"]

    def interrupted(spec: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "parse_policy", interrupted)
    result = runner.invoke(app, ["fold", str(log)])
    assert result.exit_code == 130 and said(result.stderr) == ["orderbank fold: interrupted"]


def test_kafka_clients_warnings_are_kept_from_people_but_not_from_debug(
        log: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def retrying(spec: str) -> BankSettings:
        logging.getLogger("aiokafka.producer").warning("Got error produce response, retrying")
        return BankSettings(policy=parse_policy(spec))

    monkeypatch.setattr(core, "policy_option", retrying)
    caplog.set_level(logging.WARNING)
    assert runner.invoke(app, ["fold", str(log)]).exit_code == 0 and not caplog.records
    assert runner.invoke(app, ["--debug", "fold", str(log)]).exit_code == 0
    assert [record.getMessage() for record in caplog.records] == ["Got error produce response, retrying"]
    assert logging.getLogger("aiokafka").level == logging.NOTSET  # as it was before the commands
