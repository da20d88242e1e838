"""The `ORDERBANK_*` environment: a misspelt variable is an error, never a setting silently left at its default."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping


def unknown_variable(env: Mapping[str, str], prefix: str, known: Collection[str]) -> str | None:
    """What is wrong with the first set variable under `prefix` that is not one of `known`; None if none is."""
    for name in sorted(env):
        if name.startswith(prefix) and env[name] and name not in known:
            # Compared without the prefix, which every name shares and would make any two look alike.
            close = difflib.get_close_matches(name.removeprefix(prefix), [k.removeprefix(prefix) for k in known], n=1)
            hint = f"did you mean {prefix}{close[0]}?" if close else f"known: {', '.join(sorted(known))}"
            return f"unknown variable {name} ({hint})"
    return None
