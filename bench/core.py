"""Per-event cost of the core, stage by stage, on the yu7 launch in one process (no Kafka): where a shard's time goes.

Stages, each timed over the whole log, `--rounds` times, median CPU time per event:
- orjson:   `orjson.loads` of each line, a bare loop (the floor any JSON reader pays);
- decode:   `decode_batch` over frames of `--frame` raws, as a shard decodes (msgspec Structs, validated);
- apply:    `OrderBank.apply` of the decoded events (the reducer: lifecycle, pool, queue, cancellations);
- shard:    `Shard.apply` of the frames (decode, redelivery and key checks, apply, changelog bookkeeping) and
            `Shard.changelog()` after each frame: what a worker's shard agent does per frame before publishing
            (the entries marked as the ingest marks them: those it decoded on the fast path are read again
            unchecked, orderbank.projections.codec.decode_checked);
- publish:  the shard's positions and figures records every `--publish-every` frames (about a second of input
            at the engine's rates), per event of the log.
With `--mypyc`, the same figures with the reducers every event goes through (`MYPYC`: bank, pool, queue,
cancellations) compiled by mypyc into a temporary folder and imported from there in a child process, beside
the pure-Python core's, interleaved round by round, and their ratios: what compiling the core would buy
(the engine ships the pure-Python core: docs/streaming.md, "Throughput", says why).

    .venv/bin/python bench/core.py [--rounds 3] [--frame 5000] [--publish-every 10] [--mypyc] [--seed 1]
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

# `python bench/core.py` puts bench/ first on the path, where bench/replay.py would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

MYPYC = ("bank", "cancellations", "pool", "queue")
PACKAGE = "orderbank.projections"


class _Compiled(importlib.abc.MetaPathFinder):
    """Imports the modules of MYPYC from the extensions in a folder, the rest of the package as installed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in MYPYC:
            return None
        (extension,) = self.folder.glob(f"{name}.*.so")
        return importlib.util.spec_from_file_location(fullname, extension)


if "--child" in sys.argv:  # the mypyc build's process: its extensions are found before anything imports the core
    _package = Path(sys.argv[sys.argv.index("--child") + 1])
    sys.path.insert(0, str(_package.parent.parent / "lib"))  # mypyc's shared library, a top-level module
    sys.meta_path.insert(0, _Compiled(_package))

import orjson  # noqa: E402

from orderbank.engine.stream.collector import tune_gc  # noqa: E402
from orderbank.engine.stream.frames import Entry, Frame  # noqa: E402
from orderbank.engine.stream.publish import Publisher  # noqa: E402
from orderbank.engine.stream.shards import Shard  # noqa: E402
from orderbank.projections.bank import OrderBank  # noqa: E402
from orderbank.projections.codec import Rejection, decode_batch, fast_path  # noqa: E402
from orderbank.replay.synth import generate, preset  # noqa: E402

STAGES = ("orjson", "decode", "apply", "shard", "publish")


def cpu_seconds(work: Callable[[], object]) -> float:
    """CPU time of `work`: the machine is shared, and time spent descheduled is not the code's."""
    started = time.process_time()
    work()
    return time.process_time() - started


def frames_of(lines: list[bytes], size: int) -> list[Frame]:
    """The lines in frames of `size` entries, as the ingest sends them: each marked `checked` when it decoded on
    the fast path there."""
    return [Frame("bench.events", [Entry(0, start + i, orjson.loads(value)["order_id"].encode(), value, False,
                                         fast_path(event))
                                   for i, (value, event) in enumerate(zip(chunk, decode_batch(chunk), strict=True))])
            for start in range(0, len(lines), size) for chunk in [lines[start:start + size]]]


def measure(lines: list[bytes], frame_size: int, publish_every: int) -> dict[str, float]:
    """Seconds per stage over the whole log (see the module docstring)."""
    chunks = [lines[i:i + frame_size] for i in range(0, len(lines), frame_size)]
    frames = frames_of(lines, frame_size)
    decoded: list[object] = []

    def decode() -> None:
        for chunk in chunks:
            decoded.extend(decode_batch(chunk))

    def apply() -> None:
        bank = OrderBank()
        for event in decoded:
            if not isinstance(event, Rejection):
                bank.apply(event)  # type: ignore[arg-type]

    shard = Shard(0, OrderBank())

    def fold() -> None:
        for offset, frame in enumerate(frames):
            shard.apply(frame, offset)
            shard.changelog()

    def publish() -> None:
        # The publishing of a shard that took its frames in this order, replayed on the final bank: each
        # call sees a tenth of the orders touched, as a publish every `publish_every` frames would.
        publisher, touched = Publisher(0), list(shard.bank.orders)
        calls = max(1, len(frames) // publish_every)
        step = -(-len(touched) // calls)
        for i in range(calls):
            publisher.positions(shard.bank, set(touched[i * step:(i + 1) * step]))
            publisher.figures(shard.bank)

    def bare() -> None:
        for line in lines:
            orjson.loads(line)

    return {"orjson": cpu_seconds(bare),
            "decode": cpu_seconds(decode), "apply": cpu_seconds(apply), "shard": cpu_seconds(fold),
            "publish": cpu_seconds(publish)}


def compile_core(folder: Path) -> Path:
    """The modules of MYPYC compiled by mypyc under `folder` (a copy of the package: mypyc builds beside the
    sources it is given); the folder the extensions are in."""
    import orderbank.projections

    package = folder / "orderbank" / "projections"
    shutil.copytree(Path(orderbank.projections.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    print(f"compiling {', '.join(MYPYC)} with mypyc (about a minute)...", flush=True)
    subprocess.run([sys.executable, "-m", "mypyc", "--explicit-package-bases", "--ignore-missing-imports",
                    *(f"orderbank/projections/{name}.py" for name in MYPYC)],
                   cwd=folder, env={**os.environ, "MYPYPATH": str(folder)}, check=True, capture_output=True)
    (folder / "lib").mkdir()
    for shared in folder.glob("*__mypyc.*.so"):
        shared.rename(folder / "lib" / shared.name)
    return package


def compiled_figures(args: argparse.Namespace, package: Path) -> dict[str, float]:
    """One round of `measure` in a child process whose core is the mypyc build in `package`."""
    out = subprocess.run([sys.executable, __file__, "--child", str(package), "--frame", str(args.frame),
                          "--seed", str(args.seed), "--publish-every", str(args.publish_every)],
                         check=True, capture_output=True)
    return {name: float(value) for name, value in orjson.loads(out.stdout.splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frame", type=int, default=5000, help="events per frame (the ingest's frame_events)")
    parser.add_argument("--publish-every", type=int, default=10, help="frames between two publishes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mypyc", action="store_true", help="also measure the core compiled by mypyc, side by side")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the compiled build's folder
    args = parser.parse_args()
    tune_gc()
    lines = [orjson.dumps(doc) for doc in generate(preset("yu7", None), args.seed)]
    if args.child:
        import orderbank.projections.bank

        assert not orderbank.projections.bank.__file__.endswith(".py"), "the child runs the pure-Python core"
        print(orjson.dumps(measure(lines, args.frame, args.publish_every)).decode())
        return
    print(f"{len(lines):,} events of the yu7 launch (seed {args.seed}), frames of {args.frame:,}; "
          f"CPU time per event, median of {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        builds: dict[str, list[dict[str, float]]] = {"pure Python": []}
        package = compile_core(Path(tmp)) if args.mypyc else None
        if package is not None:
            builds[f"mypyc ({', '.join(MYPYC)})"] = []
        for _ in range(args.rounds):  # interleaved: a slower spell of the machine hits both builds
            builds["pure Python"].append(measure(lines, args.frame, args.publish_every))
            if package is not None:
                builds[f"mypyc ({', '.join(MYPYC)})"].append(compiled_figures(args, package))
    medians = {name: {stage: statistics.median(r[stage] for r in rounds) / len(lines) * 1e6 for stage in STAGES}
               for name, rounds in builds.items()}
    print(f"{'us per event':40}" + "".join(f"{stage:>9}" for stage in STAGES) + f"{'shard+publish ev/s':>20}")
    for name, us in medians.items():
        print(f"{name:40}" + "".join(f"{us[stage]:9.2f}" for stage in STAGES)
              + f"{1e6 / (us['shard'] + us['publish']):20,.0f}")
    if package is not None:
        pure, compiled = medians.values()
        ratios = "".join(f"{pure[stage] / compiled[stage]:8.2f}x" for stage in STAGES)
        print(f"{'pure / mypyc (above 1: mypyc faster)':40}{ratios}")


if __name__ == "__main__":
    main()
