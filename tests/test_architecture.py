"""The arrows point one way: core <- replay lab <- engine, and inside the engine dev <- kafka <- stream <- cli, and
web <- stream (the pages know nothing of Kafka or Faust; a worker serves them).

An AST walk over every module (imports inside functions included), so an import that runs back up cannot land.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import REPO_ROOT

PACKAGES = ("projections", "replay", "engine")

# package (as installed) -> what it may not import (prefixes of module names)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "orderbank.projections": ("orderbank.engine", "orderbank.replay", "faust", "aiokafka", "mode", "typer", "rich"),
    "orderbank.replay": ("orderbank.engine", "faust", "aiokafka", "mode", "typer"),
    "orderbank.engine.dev": ("orderbank.engine.kafka", "orderbank.engine.stream", "orderbank.engine.cli",
                             "orderbank.engine.web"),
    "orderbank.engine.kafka": ("orderbank.engine.stream", "orderbank.engine.cli", "orderbank.engine.web"),
    "orderbank.engine.web": ("orderbank.engine.kafka", "orderbank.engine.stream", "orderbank.engine.cli", "faust",
                             "aiokafka", "mode"),
    "orderbank.engine.stream": ("orderbank.engine.cli",),
}
OLD_NAMES = ("engine", "projections", "replay")  # the folders' own names are not importable once installed


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(("orderbank", *parts)).removesuffix(".__init__")
            out.append((name, path))
    return out


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(name: str, imported: set[str]) -> list[str]:
    out = []
    for package, forbidden in FORBIDDEN.items():
        if name == package or name.startswith(package + "."):
            out += [f"{name} imports {target}" for target in sorted(imported)
                    if any(target == f or target.startswith(f + ".") for f in forbidden)]
    out += [f"{name} imports {target} (say orderbank.{target})" for target in sorted(imported)
            if target.split(".")[0] in OLD_NAMES]
    return out


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_point_one_way(name: str, path: Path) -> None:
    assert violations(name, imports_of(path)) == []


def test_the_rule_catches_an_arrow_running_back_up(tmp_path: Path) -> None:
    module = tmp_path / "bank.py"
    module.write_text("from orderbank.engine.settings import Settings\n\ndef f():\n    import replay.synth\n")
    assert violations("orderbank.projections.bank", imports_of(module)) == [
        "orderbank.projections.bank imports orderbank.engine.settings",
        "orderbank.projections.bank imports orderbank.engine.settings.Settings",
        "orderbank.projections.bank imports replay.synth (say orderbank.replay.synth)",
    ]


def test_tests_and_benchmarks_use_the_installed_names() -> None:
    for folder in ("tests", "bench"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            old = [t for t in imports_of(path) if t.split(".")[0] in OLD_NAMES]
            assert old == [], f"{path.relative_to(REPO_ROOT)} imports {old}"
