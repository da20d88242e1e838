"""The worker's settings (orderbank.engine.settings): read from the environment, every mistake named."""

from __future__ import annotations

import pytest

from orderbank.engine.settings import Settings, SettingsError


def test_settings_come_from_the_environment_and_name_the_bad_field() -> None:
    settings = Settings.from_env({"ORDERBANK_WEB_PORT": "7001", "ORDERBANK_POLICY": "paid-first"}, app_id="x")
    assert (settings.web_port, settings.policy, settings.app_id, settings.web_host) == (7001, "paid-first", "x",
                                                                                        "127.0.0.1")
    with pytest.raises(SettingsError, match=r"web_port.*ORDERBANK_WEB_PORT"):
        Settings.from_env({"ORDERBANK_WEB_PORT": "70000"})
    with pytest.raises(SettingsError, match="policy"):
        Settings.from_env({}, policy="bounded-overtake:k=x")
    with pytest.raises(SettingsError, match="bootstrap_servers"):
        Settings.from_env({"ORDERBANK_BOOTSTRAP_SERVERS": "nohost"})


def test_a_misspelt_variable_is_an_error_not_a_default() -> None:
    with pytest.raises(SettingsError, match=r"ORDERBANK_SHARD_PARTITION \(did you mean ORDERBANK_SHARD_PARTITIONS\?\)"):
        Settings.from_env({"ORDERBANK_SHARD_PARTITION": "8"})
    with pytest.raises(SettingsError, match=r"ORDERBANK_KAFKA_USER \(did you mean ORDERBANK_KAFKA_USERNAME\?\)"):
        Settings.from_env({"ORDERBANK_KAFKA_USER": "alice"})
    with pytest.raises(SettingsError, match=r"unknown variable ORDERBANK_XYZ \(known: ORDERBANK_APP_ID, "):
        Settings.from_env({"ORDERBANK_XYZ": "1"})
    # The broker's cache directory is not a worker setting but is ours; an empty variable counts as unset.
    assert Settings.from_env({"ORDERBANK_CACHE": "/tmp/x", "ORDERBANK_XYZ": "", "OTHER": "1"}) == Settings()
