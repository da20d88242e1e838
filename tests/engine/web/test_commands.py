"""The pages' commands: the link a customer's order confirmation carries."""

from __future__ import annotations

from typer.testing import CliRunner

from orderbank.engine.access import lookup_secret
from orderbank.engine.cli.app import app

KEY = "command-test-lookup-key-0123"


def test_lookup_secret_prints_the_secret_and_the_link_the_pages_accept() -> None:
    result = CliRunner().invoke(app, ["lookup-secret", "YU7-000042", "--url", "https://orders.example/"],
                                env={"ORDERBANK_WEB_LOOKUP_KEY": KEY})
    secret = lookup_secret(KEY, "YU7-000042")
    assert result.exit_code == 0, result.output
    assert result.output.split() == [secret, f"https://orders.example/orders/YU7-000042?secret={secret}"]


def test_lookup_secret_needs_the_servers_key_and_a_well_formed_id() -> None:
    unset = CliRunner().invoke(app, ["lookup-secret", "YU7-000042"], env={"ORDERBANK_WEB_LOOKUP_KEY": ""})
    assert unset.exit_code == 2 and "ORDERBANK_WEB_LOOKUP_KEY" in unset.output
    bad = CliRunner().invoke(app, ["lookup-secret", "bad id"], env={"ORDERBANK_WEB_LOOKUP_KEY": KEY})
    assert bad.exit_code == 2 and "order_id must be" in bad.output
