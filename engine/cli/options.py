"""Option values several commands share: a time."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

TIME = "TIME"
"""The metavar of a time option in the help."""


def parse_time(text: str) -> datetime:
    """A date or an ISO 8601 time, with or without fractions and a zone (UTC if none), as an aware datetime."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time: give a date (2025-10-26) or an ISO 8601 time "
                                 "(2025-10-26T09:30:00, with Z or +08:00 for its zone; UTC if none)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
