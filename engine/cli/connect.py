"""Which Kafka a command talks to, found the same way by every command (produce, worker, watch, up, replay --topic):

1. `--bootstrap`, when given;
2. else `ORDERBANK_BOOTSTRAP_SERVERS`, when set;
3. else the local broker that runs: `orderbank broker start`'s, else `orderbank up`'s (each keeps its address in
   its state under the per-user cache, `ORDERBANK_CACHE`; orderbank.engine.dev.broker.running_local);
4. else the settings' default, 127.0.0.1:9092.

The connection (and its TLS and SASL login) is tried once before the command starts, so a broker that is not
there or refuses the login stops it at once with a line that says so (orderbank.engine.cli.failure).
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer

from orderbank.engine.cli.failure import kafka_in_use
from orderbank.engine.dev.broker import running_local
from orderbank.engine.kafka.security import check_connection
from orderbank.engine.settings import ENV_PREFIX, Settings

BOOTSTRAP_VAR = ENV_PREFIX + "BOOTSTRAP_SERVERS"

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", help=f"Kafka host:port[,host:port...] (default: {BOOTSTRAP_VAR}, else the local broker that runs, "
         "else 127.0.0.1:9092)")]
Prefix = Annotated[str | None, typer.Option("--prefix", help="topic name prefix (default: orderbank)")]


def chosen_bootstrap(option: str | None) -> str | None:
    """The bootstrap servers named by the option, the environment or a running local broker; None if none is."""
    if option is not None:
        return option
    if os.environ.get(BOOTSTRAP_VAR):
        return os.environ[BOOTSTRAP_VAR]
    local = running_local()
    return local.bootstrap if local is not None else None


def kafka_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the options (None: not given), with the bootstrap servers found as the
    module says, once connected to."""
    settings = Settings.from_env(**{**overrides, "bootstrap_servers": chosen_bootstrap(
        overrides.get("bootstrap_servers"))})
    kafka_in_use.set(settings)  # for the failure's message, should Kafka fail later
    asyncio.run(check_connection(settings.bootstrap_servers, settings.security))
    return settings
