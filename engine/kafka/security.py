"""How orderbank's Kafka clients authenticate and encrypt: TLS and SASL (SCRAM or PLAIN) settings.

`KafkaSecurity.from_env()` reads `ORDERBANK_KAFKA_*` variables (and, if `ORDERBANK_KAFKA_SECURITY_FILE`
names one, a TOML file whose keys are the same names without the prefix, lower-cased); the result is
validated, with errors naming the variable and the rule, then frozen. `aiokafka_kwargs()` and
`faust_credentials()` hand it to the two client libraries; `check_connection()` tries it against a
broker once and fails within seconds with `KafkaAuthError` or `KafkaConnectError` instead of retrying.
The password is a `SecretStr`: it is never part of a repr, str, log line or error message.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast, get_args

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest
from pydantic import SecretStr

from orderbank.engine.environ import unknown_variable
from orderbank.projections.errors import ConfigError, OrderbankError

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)
ENV_PREFIX = "ORDERBANK_KAFKA_"
FILE_VAR = ENV_PREFIX + "SECURITY_FILE"
_PATH_KEYS = ("password_file", "cafile", "certfile", "keyfile")  # relative ones in a file: next to the file
KEYS = ("security_protocol", "sasl_mechanism", "username", "password", "check_hostname", *_PATH_KEYS)
"""The settings a security file's keys or the `ORDERBANK_KAFKA_*` variables may give."""
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_AUTH_ERRORS = (SaslAuthenticationFailed, AuthenticationFailedError, IllegalSaslStateError,
                UnsupportedSaslMechanismError)


class KafkaSecurityError(OrderbankError):
    """Root of this module's errors: bad security settings, or a broker that refused or was unreachable."""


class SecurityConfigError(KafkaSecurityError, ConfigError):
    """A security setting breaks its rule; the message names the variable."""


class KafkaAuthError(KafkaSecurityError):
    """The broker rejected the credentials (or the SASL mechanism)."""


class KafkaConnectError(KafkaSecurityError):
    """No usable connection: broker unreachable, silent, or speaking another protocol."""


class KafkaUnreachableError(KafkaConnectError):
    """Nothing answers at the address: connection refused, unknown host, unreachable network."""


class KafkaTLSError(KafkaConnectError):
    """The TLS handshake failed, e.g. the broker's certificate is not signed by the configured CA."""


def var(name: str) -> str:
    """The environment variable of a setting: `username` -> `ORDERBANK_KAFKA_USERNAME`."""
    return ENV_PREFIX + name.upper()


def _fail(name: str, rule: str) -> NoReturn:
    raise SecurityConfigError(f"{var(name)}: {rule}")


@dataclass(frozen=True)
class KafkaSecurity:
    """One way to connect to Kafka. The default, PLAINTEXT, needs nothing else."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    cafile: Path | None = None  # None = the system's trusted CAs
    certfile: Path | None = None  # client certificate, for brokers that require mutual TLS
    keyfile: Path | None = None  # its private key (unencrypted PEM), unless it is inside certfile
    check_hostname: bool = True
    _ssl: ssl.SSLContext | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        proto = self.security_protocol
        if proto not in PROTOCOLS:
            _fail("security_protocol", f"{proto!r} is not one of {', '.join(PROTOCOLS)}")
        if self.sasl_mechanism not in MECHANISMS:
            _fail("sasl_mechanism", f"{self.sasl_mechanism!r} is not one of {', '.join(MECHANISMS)}")
        if self.uses_sasl:
            if not self.username:
                _fail("username", f"required when {var('security_protocol')} is {proto}")
            if not (self.password and self.password.get_secret_value()):
                raise SecurityConfigError(f"{var('password')} or {var('password_file')}: required when "
                                          f"{var('security_protocol')} is {proto}")
        else:
            for name in ("username", "password"):
                if getattr(self, name) is not None:
                    _fail(name, f"set, but {var('security_protocol')} is {proto}, which sends no credentials "
                                "(use SASL_SSL)")
        if not self.uses_tls:
            for name in ("cafile", "certfile", "keyfile"):
                if getattr(self, name) is not None:
                    _fail(name, f"set, but {var('security_protocol')} is {proto}, which does not use TLS "
                                "(use SSL or SASL_SSL)")
        if self.keyfile is not None and self.certfile is None:
            _fail("keyfile", f"needs {var('certfile')}, the client certificate it belongs to")
        if self.uses_tls:
            object.__setattr__(self, "_ssl", self._load_ssl_context())

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context all clients share (None without TLS), built once when settings load."""
        return self._ssl

    def _load_ssl_context(self) -> ssl.SSLContext:
        # Loading the files here makes a missing or bad one fail at start-up, naming its variable.
        try:
            context: ssl.SSLContext = create_ssl_context(cafile=self.cafile)
        except (OSError, ssl.SSLError) as exc:
            _fail("cafile", f"cannot load CA certificates from {self.cafile}: {exc}")
        if self.certfile is not None:
            try:
                context.load_cert_chain(self.certfile, self.keyfile, password=_no_key_password)
            except (OSError, ssl.SSLError, ValueError) as exc:
                _fail("certfile", f"cannot load the client certificate {self.certfile} with key "
                                  f"{self.keyfile or self.certfile}: {exc}")
        context.check_hostname = self.check_hostname
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self._ssl is not None:
            kwargs["ssl_context"] = self._ssl
        if self.uses_sasl:
            assert self.password is not None  # checked in __post_init__
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self.password.get_secret_value())
        return kwargs

    def faust_credentials(self) -> CredentialsT | None:
        """The `broker_credentials` of a `faust.App`; None for PLAINTEXT."""
        from faust.auth import SASLCredentials, SSLCredentials  # Faust is heavy: only for callers that use it

        if self.uses_sasl:
            assert self.password is not None
            return SASLCredentials(username=self.username, password=self.password.get_secret_value(),
                                   mechanism=self.sasl_mechanism, ssl_context=self._ssl)
        return SSLCredentials(self._ssl) if self._ssl is not None else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """Settings from `ORDERBANK_KAFKA_*`; variables override the file named by `ORDERBANK_KAFKA_SECURITY_FILE`."""
        env = os.environ if environ is None else environ
        if problem := unknown_variable(env, ENV_PREFIX, {FILE_VAR, *map(var, KEYS)}):
            raise SecurityConfigError(problem)
        values: dict[str, str] = {}
        if path := env.get(FILE_VAR):
            values.update(_file_values(Path(path)))
        values.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and k != FILE_VAR and v})
        return cls._from_values(values)

    @classmethod
    def from_file(cls, path: Path) -> KafkaSecurity:
        """Settings from a TOML file alone, e.g. `security_protocol = "SASL_SSL"`; see docs/security.md."""
        return cls._from_values(_file_values(path))

    @classmethod
    def _from_values(cls, values: Mapping[str, str]) -> KafkaSecurity:
        def get(name: str) -> str | None:
            return values.get(var(name)) or None  # an empty variable counts as unset

        def path(name: str) -> Path | None:
            value = get(name)
            return Path(value) if value else None

        password = get("password")
        if (secret_file := get("password_file")) is not None:
            if password is not None:
                raise SecurityConfigError(f"{var('password')} and {var('password_file')}: both set; set one")
            password = _read_secret(Path(secret_file))
        return cls(security_protocol=cast(SecurityProtocol, (get("security_protocol") or "PLAINTEXT").upper()),
                   sasl_mechanism=cast(SaslMechanism, (get("sasl_mechanism") or "SCRAM-SHA-512").upper()),
                   username=get("username"), password=SecretStr(password) if password is not None else None,
                   cafile=path("cafile"), certfile=path("certfile"), keyfile=path("keyfile"),
                   check_hostname=_flag("check_hostname", get("check_hostname") or "true"))


def _no_key_password() -> NoReturn:
    # Without this callback OpenSSL would prompt on the terminal for an encrypted key's pass phrase.
    raise SecurityConfigError("the key is encrypted; give an unencrypted PEM key and protect it with file permissions")


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    _fail(name, f"{value!r} is not a boolean (true/false)")


def _read_secret(path: Path) -> str:
    try:
        secret = path.read_text().rstrip("\r\n")  # `echo pw > file` adds a newline that is not part of it
    except OSError as exc:
        _fail("password_file", f"cannot read {path}: {exc.strerror}")
    if not secret:
        _fail("password_file", f"{path} is empty")
    return secret


def _file_values(path: Path) -> dict[str, str]:
    """A TOML security file as `ORDERBANK_KAFKA_*` values; relative paths in it are relative to the file."""
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SecurityConfigError(f"{FILE_VAR}: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:  # its message has a position, never the offending text
        raise SecurityConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, str] = {}
    for key, value in doc.items():
        if key not in KEYS:
            raise SecurityConfigError(f"{path}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
        if key == "check_hostname" and isinstance(value, bool):
            value = str(value).lower()
        if not isinstance(value, str):
            raise SecurityConfigError(f"{path}: {key} must be a string")
        values[var(key)] = str(path.parent / value) if key in _PATH_KEYS else value
    return values


async def check_connection(bootstrap: str, security: KafkaSecurity, timeout: float = 10.0) -> None:
    """Connect, authenticate and fetch metadata once; raise a specific, credential-free error if that fails.

    `bootstrap` is `host:port[,host:port...]`; the first server that answers settles it, and each one
    gets `timeout` seconds. Clients otherwise log and retry such failures forever.
    """
    error: KafkaSecurityError | None = None
    hint = f"is {var('security_protocol')}={security.security_protocol} what this listener expects?"
    for server in (s.strip() for s in bootstrap.split(",")):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise KafkaConnectError(f"bootstrap server {server!r} is not host:port")
        try:
            async with asyncio.timeout(timeout):
                # The kwargs are passed inline: no local variable holds the password for a traceback to show.
                conn = await create_conn(host, int(port), request_timeout_ms=int(timeout * 1000),
                                         **security.aiokafka_kwargs())
                try:
                    await conn.send(MetadataRequest([]))
                finally:
                    conn.close()
            return
        except _AUTH_ERRORS as exc:
            error = KafkaAuthError(f"authentication failed at {server} for user {security.username!r} with "
                                   f"{security.sasl_mechanism}: {exc}; check {var('username')}, "
                                   f"{var('password')} and {var('sasl_mechanism')}")
            break  # every broker checks the same credentials
        except ssl.SSLCertVerificationError as exc:
            error = KafkaTLSError(f"TLS handshake with {server} failed: the broker's certificate was rejected "
                                  f"({exc.verify_message}); check {var('cafile')} and {var('check_hostname')}")
        except ssl.SSLError as exc:
            error = KafkaTLSError(f"TLS handshake with {server} failed ({exc.reason or exc}); {hint}")
        except TimeoutError:
            error = KafkaConnectError(f"no answer from {server} within {timeout:g}s; {hint}")
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, KafkaError) as exc:
            error = KafkaConnectError(f"{server} dropped the connection during the handshake "
                                      f"({str(exc) or type(exc).__name__}); {hint}")
        except OSError as exc:  # refused, unresolvable, unreachable: no listener to speak any protocol with
            # Connection errors of asyncio carry the errno's words in their text only as "Connect call failed".
            why = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
            error = KafkaUnreachableError(f"cannot reach Kafka at {server} ({why.lower()})")
    assert error is not None
    # Raised outside the handlers, so it has no chained cause: the client's frames hold the password.
    raise error
