"""Where the commands write: results to standard output, progress and errors to standard error."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True, highlight=False)  # an error is one line, whatever the width
