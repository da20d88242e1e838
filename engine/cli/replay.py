"""Commands of the replay lab: demo and replay."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from orderbank.engine.cli.connect import Bootstrap, kafka_settings
from orderbank.engine.cli.options import TIME, parse_time
from orderbank.engine.cli.output import console, err, fail
from orderbank.engine.kafka.source import KafkaSource
from orderbank.projections.errors import LogError
from orderbank.replay import job
from orderbank.replay.compare import DEFAULT_POLICIES, ReplaySettings
from orderbank.replay.source import FileSource, LineSource


def _replay_settings(policy: list[str] | None, replications: int, seed: int, patience: str) -> ReplaySettings:
    settings = ReplaySettings(tuple(policy) if policy else DEFAULT_POLICIES, replications, seed, patience)
    settings.parsed()  # a ConfigError names the setting, before any work
    return settings


def demo(
    seed: Annotated[int, typer.Option(help="seed of the synthetic launch, and first seed of the replays")] = 1,
    replications: Annotated[int, typer.Option(help="seeds per policy")] = 3,
    output: Annotated[Path, typer.Option("-o", "--output", help="report directory")] = Path("report"),
) -> None:
    """The main job on the embedded default: synth the yu7 launch, replay it under every policy, report."""
    try:
        job.demo(seed, _replay_settings(None, replications, seed, "km"), output, console, err)
    except KeyboardInterrupt:
        err.print("interrupted: no report written")
        raise typer.Exit(130) from None


def replay(
    log: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False,
                                               help="JSON lines event log (.jsonl, .jsonl.gz)")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        help="repeatable: fifo, high-trim-first, paid-first, bounded-overtake:k=500 (default: all four)")] = None,
    replications: Annotated[int, typer.Option(help="seeds per policy; means get 95% intervals")] = 3,
    seed: Annotated[int, typer.Option(help="first seed; same log and seed, same summary.json")] = 1,
    patience: Annotated[str, typer.Option(help="patience estimator: km (Kaplan-Meier) or weibull")] = "km",
    output: Annotated[Path, typer.Option("-o", "--output", help="report directory")] = Path("report"),
    topic: Annotated[str | None, typer.Option(help="replay a Kafka topic instead of a file")] = None,
    bootstrap: Bootstrap = None,
    since: Annotated[datetime | None, typer.Option(
        parser=parse_time, metavar=TIME, help="with --topic: from this time on (UTC if no zone), not the earliest")]
    = None,
) -> None:
    """Replay a log (a file, or a Kafka topic) under ordering policies and compare them with what happened."""
    if (log is None) == (topic is None):
        raise typer.BadParameter("give either LOG or --topic")
    settings = _replay_settings(policy, replications, seed, patience)
    source: LineSource
    if log is not None:
        source = FileSource(log)
    else:
        kafka = kafka_settings(bootstrap_servers=bootstrap)
        source = KafkaSource(kafka.bootstrap_servers, str(topic), since, kafka.security)
    try:
        job.replay_log(source, settings, output, console, err)
    except KeyboardInterrupt:
        err.print("interrupted: no report written")
        raise typer.Exit(130) from None
    except LogError as exc:
        fail("replay", exc, ": no report written")


def register(app: typer.Typer) -> None:
    """Add these commands to the `orderbank` app."""
    for command in (demo, replay):
        app.command()(command)
