"""One error root: every exception class of orderbank is an OrderbankError, and real failures are catchable as one."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType

import pytest

from orderbank.engine.kafka.security import KafkaSecurity, SecurityConfigError
from orderbank.engine.settings import Settings, SettingsError
from orderbank.projections.errors import ConfigError, LogError, OrderbankError
from orderbank.projections.policies import PolicyError, parse_policy
from orderbank.replay.compare import ReplaySettings
from orderbank.replay.source import MemorySource
from orderbank.replay.synth import preset
from tests import REPO_ROOT

PACKAGES = {"orderbank.projections": "projections", "orderbank.replay": "replay", "orderbank.engine": "engine"}


def every_module() -> list[ModuleType]:
    """Every module of the installed packages (a `__main__` would run the CLI on import)."""
    names = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        names += [name, *(info.name for info in pkgutil.walk_packages(package.__path__, name + "."))]
    return [importlib.import_module(name) for name in names if not name.endswith(".__main__")]


def subclasses(root: type[BaseException]) -> set[type[BaseException]]:
    found = set(root.__subclasses__())
    for cls in list(found):
        found |= subclasses(cls)
    return found


def test_the_walk_imports_every_module_of_the_packages() -> None:
    on_disk = {path for folder in PACKAGES.values() for path in (REPO_ROOT / folder).rglob("*.py")
               if path.name != "__main__.py"}
    walked = {module.__file__ for module in every_module()}
    assert {str(path) for path in on_disk} == walked


def test_every_exception_class_of_orderbank_derives_from_the_root() -> None:
    every_module()
    # Subclasses, not module attributes: a class defined inside a function or another class counts too.
    ours = {cls for cls in subclasses(BaseException) if cls.__module__.startswith("orderbank.")}
    assert {cls.__name__ for cls in ours} >= {"OrderbankError", "SettingsError", "BrokerError", "FrameError",
                                              "KafkaSecurityError", "SecurityConfigError", "Unavailable"}
    assert sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in ours
                  if not issubclass(cls, OrderbankError)) == []


@pytest.mark.parametrize(("fail", "kind", "message"), [
    (lambda: parse_policy("bounded-overtake:k=-1"), PolicyError, "k must be >= 0"),
    (lambda: Settings.from_env({"ORDERBANK_WEB_PORT": "0"}), SettingsError, "web_port"),
    (lambda: Settings.from_env({"ORDERBANK_BOOTSTRAP_SERVERS": "nohost"}), SettingsError, "'nohost' is not host:port"),
    (lambda: KafkaSecurity.from_env({"ORDERBANK_KAFKA_SECURITY_PROTOCOL": "SASL_TLS"}), SecurityConfigError,
     "ORDERBANK_KAFKA_SECURITY_PROTOCOL"),
    (lambda: preset("yu8"), ConfigError, "unknown preset 'yu8'"),
    (lambda: ReplaySettings(policies=("fifo", "fifo")).parsed(), ConfigError, "named twice"),
    (lambda: MemorySource((b"{}", b" {}")), LogError, "line 2 has surrounding whitespace"),
], ids=["policy", "setting", "setting-validator", "security", "preset", "replay-settings", "log"])
def test_a_bad_value_is_an_orderbank_error_and_still_a_value_error(fail: Callable[[], object],
                                                                   kind: type[OrderbankError], message: str) -> None:
    with pytest.raises(OrderbankError, match=message) as info:
        fail()
    assert isinstance(info.value, kind) and isinstance(info.value, ValueError)
