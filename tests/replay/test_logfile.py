"""Reading a log file: every line with its number in the file, a byte order mark dropped, compressed data that is
cut short or corrupt one `LogError` naming the file and the last line read whole, read line by line or in blocks;
a synthetic launch read as it is made, the lines and blocks its file would give."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest

import orderbank.replay.source
from orderbank.projections.errors import LogError
from orderbank.replay.logfile import BOM, read_lines
from orderbank.replay.source import FileSource, LaunchSource
from orderbank.replay.synth import preset
from tests.support.logfiles import launch, noise, truncated


def launch_text(path: Path) -> bytes:
    """A small launch written to `path` (compressed if it ends in .gz); its text."""
    launch(path)
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def failure(read: Iterable[object]) -> str:
    """The message of the LogError reading everything raises."""
    with pytest.raises(LogError) as raised:
        list(read)
    return str(raised.value)


def both_ways(path: Path) -> tuple[str, str]:
    """What reading the file line by line says, and what reading it in blocks says."""
    return failure(read_lines(path)), failure(FileSource(path).blocks())


def test_a_truncated_gzip_names_the_file_and_the_last_whole_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orderbank.replay.source, "BLOCK_BYTES", 4096)  # many blocks, the failure in a late one
    path = tmp_path / "launch.jsonl.gz"
    whole = truncated(path)
    assert whole > 100  # lines of about 300 bytes: the failure comes in a late block
    lines, blocks = both_ways(path)
    assert lines == blocks == f"{path}: the compressed data ends early after line {whole:,} (truncated file?)"


def test_a_gzip_cut_in_its_trailer_is_truncated_after_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "launch.jsonl.gz"
    text = launch_text(path)
    path.write_bytes(path.read_bytes()[:-4])  # the length of the data is missing
    lines, blocks = both_ways(path)
    assert lines == blocks and f"ends early after line {len(text.splitlines()):,} (truncated" in lines


def test_random_bytes_are_not_gzip_data(tmp_path: Path) -> None:
    path = tmp_path / "noise.jsonl.gz"
    noise(path)
    lines, blocks = both_ways(path)
    assert lines == blocks
    assert lines.startswith(f"{path}: the compressed data is corrupt before its first line (Not a gzipped file")


def test_corrupt_deflate_data_after_some_lines(tmp_path: Path) -> None:
    path = tmp_path / "launch.jsonl.gz"
    launch(path)
    packed = bytearray(path.read_bytes())
    middle = len(packed) // 2
    packed[middle:middle + 64] = bytes(64)
    path.write_bytes(packed)
    lines, blocks = both_ways(path)
    assert lines == blocks and lines.startswith(f"{path}: the compressed data is corrupt after line ")
    assert lines.endswith(")")  # what zlib or gzip found wrong (here the checksum of what the zeros inflate to)


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz"])
def test_a_leading_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path, name: str) -> None:
    plain, path = tmp_path / ("plain" + name.removeprefix("bom")), tmp_path / name
    text = launch_text(plain)
    with gzip.open(path, "wb") if name.endswith(".gz") else path.open("wb") as handle:
        handle.write(BOM + text)
    assert list(read_lines(path)) == list(read_lines(plain))
    assert b"".join(FileSource(path).blocks()) == b"".join(FileSource(plain).blocks()) == text


def test_a_byte_order_mark_elsewhere_stays(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"{}\n" + BOM + b"{}\n")
    assert list(read_lines(path)) == [b"{}", BOM + b"{}"]


def test_lines_keep_their_numbers_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'\n  {"a": 1}  \r\n\n   \n{"b": 2}')
    assert list(read_lines(path)) == [b"", b'{"a": 1}', b"", b"", b'{"b": 2}']
    assert b"".join(FileSource(path).blocks()).count(b"\n") == 5


def test_a_plain_file_reads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    text = launch_text(path)
    assert list(read_lines(path)) == [orjson.dumps(orjson.loads(line)) for line in text.splitlines()]


def test_a_launch_source_reads_as_the_file_the_synth_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.jsonl"
    launch(path, orders=300, seed=3)
    source = LaunchSource(preset("small", 300), 3)
    assert list(source.lines()) == list(read_lines(path)) and list(source.lines()) == list(source.lines())
    monkeypatch.setattr(orderbank.replay.source, "BLOCK_BYTES", 4_096)
    blocks = [bytes(block) for block in source.blocks()]
    assert len(blocks) > 1 and all(block.endswith(b"\n") for block in blocks)
    assert b"".join(blocks) == path.read_bytes()
