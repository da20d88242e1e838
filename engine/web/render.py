"""HTML from the view-models: Jinja2 templates shipped with the package, autoescaped. A page's live parts are
templates of their own (`parts/<page>_<part>.html`), so a live update re-renders exactly what the page showed."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

LIVE_PARTS = {
    "order": ("as_of", "standing", "money", "history"),
    "dashboard": ("freshness", "lanes", "pool", "cancellations", "health"),
}


@cache
def environment() -> Environment:
    return Environment(loader=PackageLoader("orderbank.engine.web", "templates"), autoescape=select_autoescape(),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def page(name: str, context: Mapping[str, Any]) -> str:
    """A whole page (`<name>.html`)."""
    return environment().get_template(f"{name}.html").render(context)


def live_parts(name: str, context: Mapping[str, Any]) -> dict[str, str]:
    """The parts of a page that a live update replaces, by the `data-live` name they have on the page."""
    return {part: environment().get_template(f"parts/{name}_{part}.html").render(context)
            for part in LIVE_PARTS[name]}
