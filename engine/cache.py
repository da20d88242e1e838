"""Where orderbank keeps what it downloads and runs locally: the broker's jars and state, workers' state.

A per-user cache directory (`~/.cache/orderbank` on Linux, after `XDG_CACHE_HOME`), or `ORDERBANK_CACHE` when set;
never a path inside the installed package or the source tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_VAR = "ORDERBANK_CACHE"


def cache_dir() -> Path:
    """`ORDERBANK_CACHE`, or the user's cache directory for orderbank."""
    return Path(os.environ.get(CACHE_VAR) or platformdirs.user_cache_dir("orderbank"))
