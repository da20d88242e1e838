"""Who may read what (orderbank.engine.access): lookup secrets per order, the service token for everything."""

from __future__ import annotations

from orderbank.engine.access import Access, Grant, lookup_secret
from orderbank.engine.settings import Settings

KEY, TOKEN = "lookup-key-0123456789", "service-token-0123456789"


def test_a_lookup_secret_is_per_order_and_per_key() -> None:
    secret = lookup_secret(KEY, "YU7-000042")
    assert secret == lookup_secret(KEY, "YU7-000042") and len(secret) == 26 and secret.isalnum()
    assert secret != lookup_secret(KEY, "YU7-000043") and secret != lookup_secret(KEY + "x", "YU7-000042")


def test_grants() -> None:
    access = Access(KEY, TOKEN)
    secret = lookup_secret(KEY, "A-1")
    assert access.order("A-1", {}, {"secret": secret}) is Grant.ORDER
    assert access.order("A-1", {"X-Orderbank-Secret": secret}, {}) is Grant.ORDER
    assert access.order("A-2", {}, {"secret": secret}) is Grant.NONE
    assert access.order("A-2", {"Authorization": f"Bearer {TOKEN}"}, {}) is Grant.SERVICE
    assert access.order("A-1", {"Authorization": f"bearer  {TOKEN} "}, {}) is Grant.SERVICE
    assert access.bearer({"Authorization": f"Bearer {TOKEN}x"}) is Grant.NONE
    assert access.bearer({}) is Grant.NONE


def test_nothing_is_granted_without_configuration() -> None:
    access = Settings().access
    assert access == Access(None, None)
    assert access.order("A-1", {"Authorization": "Bearer "}, {"secret": ""}) is Grant.NONE
    assert access.bearer({"Authorization": "Bearer None"}) is Grant.NONE


def test_credentials_come_from_the_environment_and_are_never_dumped() -> None:
    settings = Settings.from_env({"ORDERBANK_WEB_LOOKUP_KEY": KEY, "ORDERBANK_WEB_SERVICE_TOKEN": TOKEN})
    assert settings.access == Access(KEY, TOKEN)
    assert KEY not in repr(settings) and TOKEN not in settings.model_dump_json() and TOKEN not in str(settings)
