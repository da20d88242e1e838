"""The streaming engine's one settings object: broker, topics, worker, web, guarantees, publishing.

Every field has a documented default and can be overridden by an environment variable named
`ORDERBANK_<FIELD>` (e.g. `ORDERBANK_BOOTSTRAP_SERVERS=broker:9092`, `ORDERBANK_WEB_PORT=6067`).
Values are validated on load; a bad value fails with the field's name and the rule it broke.
`security` (TLS/SASL of every Kafka client) comes from the `ORDERBANK_KAFKA_*` variables instead
(orderbank.engine.kafka.security, docs/security.md); it is never dumped, so settings can be printed or passed on safely.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, SecretStr, ValidationError, field_validator

from orderbank.engine.access import Access
from orderbank.engine.cache import CACHE_VAR, cache_dir
from orderbank.engine.environ import unknown_variable
from orderbank.engine.kafka import security
from orderbank.engine.kafka.security import KafkaSecurity, SecurityConfigError
from orderbank.projections.bank import BankSettings
from orderbank.projections.errors import ConfigError
from orderbank.projections.policies import parse_policy

ENV_PREFIX = "ORDERBANK_"


class SettingsError(ConfigError):
    """A setting has a value that breaks its rule."""


class Settings(BaseModel):
    """How one worker (or producer, or subscriber) connects and what it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1, description="host:port[,host:port...]")
    security: InstanceOf[KafkaSecurity] = Field(default_factory=KafkaSecurity.from_env, exclude=True, repr=False,
                                                description="TLS/SASL of every Kafka client (ORDERBANK_KAFKA_*)")
    app_id: str = Field("orderbank", pattern=r"^[A-Za-z0-9._-]{1,100}$",
                        description="Faust app id: consumer group and changelog topic prefix")
    topic_prefix: str = Field("orderbank", pattern=r"^[A-Za-z0-9._-]{1,100}$",
                              description="prefix of every topic name (see orderbank.engine.kafka.topics)")
    input_partitions: int = Field(4, ge=1, le=1024, description="partitions of the input topic")
    shard_partitions: int = Field(4, ge=1, le=1024,
                                  description="partitions of the lanes topic: each one holds whole lanes")
    replication_factor: int = Field(1, ge=1, le=16, description="replication of topics created on start")
    worker_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    web_host: str = Field("127.0.0.1", min_length=1, description="address the HTTP views bind to")
    web_port: int = Field(6066, ge=1, le=65535)
    web_advertised_host: str | None = Field(
        None, description="host other workers use to reach this one; default web_host, or the hostname "
                          "when binding all interfaces")
    web_lookup_key: SecretStr | None = Field(
        None, min_length=16, exclude=True, repr=False,
        description="key of customers' order lookup secrets (HMAC of the order id, engine/access.py); unset: none")
    web_service_token: SecretStr | None = Field(
        None, min_length=16, exclude=True, repr=False,
        description="bearer token for whole-bank views and any order; unset: those views are off")
    web_report_dir: Path | None = Field(None, description="a replay report directory the policy page links to")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    ingest: Literal["process", "inline"] = Field(
        "process", description="run the ingest (input reading and routing) in a process of its own, on another "
                               "core, or inside the worker")
    store: str = Field("memory://", pattern=r"^(memory|rocksdb)://$", description="Faust table store")
    standby_replicas: int = Field(0, ge=0, le=8, description="Faust standby replicas of the bank table")
    data_dir: Path | None = Field(None,
                              description="Faust's local state; default <cache>/workers/<app>-<port> (engine/cache.py)")
    session_timeout_s: float = Field(10.0, ge=6.0, le=300.0, description="consumer group session timeout")
    policy: str = Field("fifo", description="ordering policy, e.g. fifo, high-trim-first, bounded-overtake:k=500")
    lane_by: Literal["model", "model_trim"] = "model"
    eta_window_days: int = Field(28, ge=1, le=3650)
    max_open_per_lane: int = Field(2_000_000, ge=1)
    frame_events: int = Field(5000, ge=1, le=100_000, description="most events in one lanes-topic message")
    frame_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=4 * 1024 * 1024, description="most bytes in one")
    position_bucket_ratio: float = Field(2.0, gt=1.0, le=100.0,
                                         description="queue position buckets grow by this factor")
    publish_interval_s: float = Field(1.0, gt=0, le=3600, description="positions/pool/rates publish period")
    snapshot_interval_s: float = Field(10.0, gt=0, le=86400, description="exact lane snapshot period")
    idle_after_s: float = Field(0.25, gt=0, le=3600, description="quiet time after which a shard flushes all")
    snapshot_page_size: int = Field(2000, ge=1, le=20_000, description="positions per lane snapshot record")
    stall_after_s: float = Field(30.0, gt=0, le=86400,
                                 description="/health is degraded when a shard has frames waiting and has not "
                                             "advanced for this long")
    crash_window_s: float = Field(60.0, gt=0, le=86400,
                                  description="/health is degraded while the shards agent crashed 3 times "
                                              "within this many seconds")

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        parse_policy(value)  # raises PolicyError (a ValueError) naming the policy and the parameter
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise SettingsError(f"{server!r} is not host:port")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `ORDERBANK_*` variables, then explicit overrides (None means: not given)."""
        env = os.environ if environ is None else environ
        ours = {name: value for name, value in env.items() if not name.startswith(security.ENV_PREFIX)}
        known = {CACHE_VAR, *(ENV_PREFIX + name.upper() for name in cls.model_fields.keys() - {"security"})}
        if problem := unknown_variable(ours, ENV_PREFIX, known):
            raise SettingsError(problem)
        try:
            values: dict[str, Any] = {"security": KafkaSecurity.from_env(env)}
        except SecurityConfigError as exc:  # its message names the ORDERBANK_KAFKA_* variable
            raise SettingsError(f"setting security: {exc}") from None
        for name in cls.model_fields.keys() - {"security"}:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"])
            var = ENV_PREFIX + field.upper()
            where = f" (environment variable {var})" if var in env and field not in overrides else ""
            raise SettingsError(f"setting {field}{where}: {err['msg'].removeprefix('Value error, ')}") from None

    @property
    def bank(self) -> BankSettings:
        return BankSettings(policy=parse_policy(self.policy), lane_by=self.lane_by,
                            eta_window_days=self.eta_window_days, max_open_per_lane=self.max_open_per_lane)

    @property
    def advertised_url(self) -> str:
        """The URL other workers route requests to."""
        host = self.web_advertised_host or (socket.gethostname() if self.web_host in ("0.0.0.0", "::")
                                            else self.web_host)
        return f"http://{host}:{self.web_port}"

    @property
    def state_dir(self) -> Path:
        return self.data_dir or cache_dir() / "workers" / f"{self.app_id}-{self.web_port}"

    @property
    def access(self) -> Access:
        """Who may read what over HTTP (engine/access.py)."""
        return Access(self.web_lookup_key.get_secret_value() if self.web_lookup_key else None,
                      self.web_service_token.get_secret_value() if self.web_service_token else None)

    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",")]

    def kafka_kwargs(self) -> dict[str, Any]:
        """Where and how every aiokafka client connects: bootstrap servers and security (holds the password:
        pass it straight to the client, never log it)."""
        return {"bootstrap_servers": self.servers(), **self.security.aiokafka_kwargs()}
