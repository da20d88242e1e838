"""`orderbank replay LOG` on a damaged log: one line saying what is wrong with the file, and no report."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from tests.support.logfiles import noise, truncated


def replay(log: Path, output: Path) -> tuple[int, list[str], bool]:
    """The replay's exit code, the lines it wrote that are not blank, and whether it ended in an exit (no error)."""
    result = CliRunner().invoke(app, ["replay", str(log), "--policy", "fifo", "--replications", "1",
                                      "-o", str(output)])
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()], \
        isinstance(result.exception, SystemExit)


def test_a_truncated_gzip_is_one_line_naming_the_last_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "launch.jsonl.gz"
    whole = truncated(log, orders=2000)
    code, lines, exited = replay(log, tmp_path / "report")
    assert (code, exited) == (1, True)
    assert lines == [f"orderbank replay: {log}: the compressed data ends early after line {whole:,} (truncated file?): "
                     "no report written"]
    assert not (tmp_path / "report").exists()


def test_random_bytes_are_one_line(tmp_path: Path) -> None:
    log = tmp_path / "noise.jsonl.gz"
    noise(log)
    code, lines, exited = replay(log, tmp_path / "report")
    assert (code, exited, len(lines)) == (1, True, 1)
    assert lines[0].startswith(f"orderbank replay: {log}: the compressed data is corrupt before its first line")
