"""orderbank's tests (pytest), run by `make test`."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
