"""Streaming throughput: the engine's worker against references and its Kafka Streams peer, on one topic, in one run.

A synthetic launch is produced once into a fresh input topic; then, one after the other and each
alone on the machine (with the broker):
- ceiling: a bare aiokafka consumer that reads the topic, decodes (orderbank.projections.codec.decode_batch, as a
  shard does) and folds (OrderBank.apply) with no output at all: the most one Python process can
  do with these reducers;
- engine:  the engine's worker, `faust -A orderbank.engine.stream.app worker` with its ingest process (frames, shard
  agent, changelog, dead letters, published projections), timed from its first fetch until every
  event is applied and written, and until its full publish (positions, pool, rates and lane
  snapshots of the final state) is out: when the projection topics reflect every event;
- peer:    the Kafka Streams application that does the same fold and pool job
  (../shared/peers/kafka-streams-orderbank, `run.sh TOPIC N memory|rocks`), built once into .cache/ks-orderbank
  before the clock starts; its RESULT figure (every event folded and the pool aggregated) is set beside the
  engine's applied figure, its `projections:` figure (last projection record handed to the producer) beside the
  engine's published one. Skipped, with one line saying why, when java, mvn or the peer's folder is missing;
- naive (`--naive`, one run, first: ~9 minutes on yu7): a Faust agent that takes one event at a time, decodes,
  applies and writes the order to a changelog-backed table (one table write per event).
The ceiling, the engine and the peer run `--runs` times, alternately (the machine is shared and noisy);
prints each run's events/s, the medians, their ratios and the issue's targets beside them (engine >= 2x the peer,
>= 80% of the ceiling; ceiling >= 3x the peer). Startup time is excluded everywhere; the Python ones run with the
worker's garbage-collector thresholds (orderbank.engine.stream.collector.GC_THRESHOLDS).

Each run also reads, from /proc, the CPU time its processes and the broker spent in its timed window (bench/cpu.py:
the ceiling's own process, the engine's worker and its ingest process, the peer's JVM), and prints it per event
with the cores it kept busy (a process at a whole core is what bounds a rate; on the YU7 launch, the engine's
worker), and the last lines work out what twice the peer's rate would leave the engine once the broker has taken
its share.

    .venv/bin/python bench/stream.py [--preset small|yu7] [--orders N] [--runs 3] [--seed 1] [--bootstrap HOST:PORT]
                                     [--peer|--no-peer] [--peer-store memory|rocks] [--peer-dir DIR] [--naive]
                                     [--baseline OTHER/.venv/bin/python[:APP]] [--workers 1,2] [--models 1|2|3]

`--baseline` runs another build of the engine too (another checkout with its own venv; APP is its Faust
app module, e.g. `engine.app` before the packages were installed as orderbank.*), interleaved with this one
on the same topic, and prints this build / baseline: how a change is measured on a noisy machine.

`--workers 1,2` runs the engine as one worker and as two in one consumer group (each count in turn, every
run), and the peer with one and two stream threads, and prints each count's ratios and 2 workers / 1. The broker
then waits Kafka's default 3 s for a group's members before its first assignment, so workers started together
share the partitions from the start. A launch of one model is one lane, and a lane is one shard's, whichever
worker holds it: a second worker takes the other input partitions' routing, not the lane's fold. `--models 2`
(or 3) launches that many models at once (the preset's launch for each, seeds `--seed`, `--seed` + 1, ..., merged
in time order): lanes on shards of their own, which two workers can divide.

`--preset small` (the default) is a launch of `--orders` (150,000) orders; `--preset yu7` is the
calibrated YU7 launch (300,000 orders, 289,000 of them on launch day: ~1.1 million events).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import Any

# `python bench/stream.py` puts bench/ first on the path, where bench/replay.py would shadow the package;
# the repository root instead, for `bench.peer`.
sys.path[:] = [str(Path(__file__).resolve().parents[1]),
               *(entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent)]

import msgspec  # noqa: E402
import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from bench.cpu import INGEST, Timeline, Usage, available  # noqa: E402
from bench.peer import BUILD_DIR, DEFAULT_DIR, Peer, PeerFailed  # noqa: E402
from orderbank.engine.dev.broker import Broker, BrokerSettings  # noqa: E402
from orderbank.engine.dev.children import stop_child  # noqa: E402
from orderbank.engine.dev.ports import free_port  # noqa: E402
from orderbank.engine.kafka.topics import Topics, ensure  # noqa: E402
from orderbank.engine.settings import Settings  # noqa: E402
from orderbank.engine.stream.app import APP  # noqa: E402
from orderbank.engine.stream.collector import tune_gc  # noqa: E402
from orderbank.projections.bank import OrderBank  # noqa: E402
from orderbank.projections.codec import Rejection, decode_batch  # noqa: E402
from orderbank.replay.synth import Scenario, generate, preset  # noqa: E402

PARTITIONS = 4
MODELS = ("YU7", "SU7", "MX11")
"""The models of `--models`: their lanes hash to three different shards of four."""
CEILING, NAIVE = "ceiling: aiokafka + decode + fold", "naive Faust agent (table write/event)"
PEER_FOLDED, PEER_PROJECTED = "Kafka Streams peer: RESULT (fold+pool)", "Kafka Streams peer: + projections out"
APPLIED, PUBLISHED = "engine worker: applied + written", "engine worker: + full publish out"
BASE_APPLIED, BASE_PUBLISHED = "baseline build: applied + written", "baseline build: + full publish out"
BROKER, WORKER, OWN = "broker", "worker", "ceiling"
"""The parts whose CPU is counted: the broker's JVM, an engine worker (its ingest process is bench.cpu.INGEST),
this process while it runs the ceiling, and the peer's JVM (bench.peer.PEER)."""


def peer_labels(threads: int) -> tuple[str, str]:
    """The peer's two figures' names, with `threads` stream threads."""
    if threads == 1:
        return PEER_FOLDED, PEER_PROJECTED
    return f"peer, {threads} threads: RESULT", f"peer, {threads} threads: + projections out"


def applied_label(workers: int) -> str:
    return APPLIED if workers == 1 else f"engine, {workers} workers: applied + written"


def published_label(workers: int) -> str:
    return PUBLISHED if workers == 1 else f"engine, {workers} workers: + full publish out"


async def produce(settings: Settings, lines: list[bytes]) -> None:
    topic = Topics(settings).events
    await ensure(settings, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=settings.servers(), enable_idempotence=True, linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        for line in lines:
            await producer.send(topic.name, line, key=orjson.loads(line)["order_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def ceiling(settings: Settings, total: int, timeline: Timeline) -> tuple[float, Usage]:
    """Seconds for a bare consumer to read, decode and fold every event, and what it and the broker spent."""
    topic = Topics(settings).events.name
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.servers(), group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        bank, seen, started, cpu, at = OrderBank(), 0, 0.0, 0.0, 0.0
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=500, max_records=20_000)).values():
                if not started:
                    timeline.sample()
                    started, cpu, at = time.perf_counter(), time.process_time(), time.time()
                for event in decode_batch([r.value for r in records]):
                    if not isinstance(event, Rejection):
                        bank.apply(event)
                seen += len(records)
        seconds, own = time.perf_counter() - started, time.process_time() - cpu
        timeline.sample()
        return seconds, Usage({**timeline.spent(at, at + seconds), OWN: own}, seconds)
    finally:
        await consumer.stop()


def naive_worker(bootstrap: str, prefix: str, total: int, port: int, datadir: str) -> None:
    """Run in a child process: the naive Faust agent; writes its seconds to datadir/result once it saw `total`."""
    import faust

    from orderbank.projections.codec import decode

    tune_gc()  # as the engine worker does, so the comparison is of the designs
    app = faust.App(f"{prefix}-naive", broker=f"kafka://{bootstrap}", store="memory://", autodiscover=False,
                    web_port=port, web_bind="127.0.0.1", datadir=datadir, topic_partitions=PARTITIONS)
    events = app.topic(f"{prefix}.events", key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    orders = app.Table("orders", partitions=PARTITIONS, schema=faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"))
    bank, state = OrderBank(), {"seen": 0, "started": 0.0}

    @app.agent(events)
    async def naive(stream: Any) -> None:
        try:
            async for key, value in stream.items():
                state["started"] = state["started"] or time.perf_counter()
                event = decode(value)
                if not isinstance(event, Rejection):
                    bank.apply(event)
                    orders[key] = msgspec.json.encode(bank.orders[event.order_id])
                state["seen"] += 1
                if state["seen"] == total:
                    Path(datadir, "result").write_bytes(orjson.dumps(time.perf_counter() - state["started"]))
        except Exception as exc:  # Faust would log it and restart the agent, and the bench wait forever
            Path(datadir, "error").write_text(repr(exc))
            raise

    from faust.worker import Worker

    Worker(app, loglevel="error", quiet=True).execute_from_commandline()


def child(args: list[str], env: dict[str, str] | None = None, python: str = sys.executable,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([python, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=cwd)


@dataclass(frozen=True)
class Build:
    """An engine build to run: an interpreter whose environment has it installed, and its Faust app module."""

    python: str = sys.executable
    app: str = APP


def naive(bootstrap: str, prefix: str, total: int, tmp: Path) -> float:
    result = tmp / "naive" / "result"
    proc = child([__file__, "--naive-worker", bootstrap, prefix, str(total), str(free_port()), str(result.parent)])
    try:
        while not result.exists():
            if proc.poll() is not None or result.with_name("error").exists():
                raise RuntimeError("the naive worker failed before it finished")
            time.sleep(0.2)
        return float(orjson.loads(result.read_bytes()))
    finally:
        stop_child(proc)


def health(port: int) -> dict[str, Any]:
    """A worker's /health ({} while it does not answer)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return dict(orjson.loads(response.read()))
    except OSError:
        return {}


def engine(bootstrap: str, prefix: str, total: int, tmp: Path, timeline: Timeline, build: Build = Build(),
           workers: int = 1) -> tuple[float, float, Usage]:
    """Seconds from the first fetch (of any worker) until all events are applied and written, and published, and
    what the workers, their ingest processes and the broker spent until then."""
    app_id, procs, ports = f"{prefix}-engine-{uuid.uuid4().hex[:6]}", [], []
    # From a folder of its own: run from a checkout, `-m` would import that checkout's top-level folders
    # (an older build's `engine` package, say) instead of the build's installed ones.
    (tmp / "cwd").mkdir(parents=True, exist_ok=True)
    try:
        for worker in range(workers):
            ports.append(free_port())
            env = {**os.environ, "ORDERBANK_BOOTSTRAP_SERVERS": bootstrap, "ORDERBANK_TOPIC_PREFIX": prefix,
                   "ORDERBANK_APP_ID": app_id, "ORDERBANK_WEB_PORT": str(ports[-1]),
                   "ORDERBANK_DATA_DIR": str(tmp / f"engine-{worker}"), "ORDERBANK_INPUT_PARTITIONS": str(PARTITIONS)}
            procs.append(child(["-m", "faust", "-A", build.app, "worker", "-l", "warn"], env, build.python,
                               tmp / "cwd"))
            timeline.watch(procs[-1].pid, WORKER)
        applied = 0.0
        while True:
            timeline.sample()
            if any(proc.poll() is not None for proc in procs):
                raise RuntimeError("an engine worker exited")
            answers = [health(port) for port in ports]
            shards = [shard for answer in answers for shard in answer.get("shards", {}).values()]
            fetched = [at for answer in answers if (at := answer.get("ingest", {}).get("first_fetch_at"))]
            if fetched and not applied and sum(s["processed"] for s in shards) >= total:
                applied = max(s["written_at"] or 0 for s in shards) - min(fetched)
            if applied and all(s["published"] for s in shards):
                published = max(s["published_at"] for s in shards if s["published_at"]) - min(fetched)
                timeline.sample()
                return applied, published, Usage(timeline.spent(min(fetched), min(fetched) + published), published)
            # The figures come from the workers' own clocks; asking more often would only take their time.
            time.sleep(0.25)
    finally:
        for proc in procs:
            stop_child(proc)
            timeline.forget(proc.pid)


def main() -> None:
    if sys.argv[1:2] == ["--naive-worker"]:
        bootstrap, prefix, total, port, datadir = sys.argv[2:7]
        sys.argv[1:] = ["worker"]
        return naive_worker(bootstrap, prefix, int(total), int(port), datadir)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["small", "yu7"], default="small")
    parser.add_argument("--orders", type=int, help="orders in the launch (small: 150,000; yu7: its own 300,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", type=int, choices=range(1, len(MODELS) + 1), default=1,
                        help=f"launch this many models at once, a lane each ({', '.join(MODELS)}; default 1)")
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--runs", type=int, default=3, help="runs of the ceiling, the engine and the peer")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True,
                        help="run the Kafka Streams peer too (default: yes, when java and mvn are there)")
    parser.add_argument("--peer-store", choices=["memory", "rocks"], default="memory")
    parser.add_argument("--peer-dir", type=Path, default=DEFAULT_DIR, help="the peer's folder (with run.sh)")
    parser.add_argument("--naive", action="store_true",
                        help="also run the naive Faust agent once, first (~2,000 events/s: ~9 minutes on yu7)")
    parser.add_argument("--baseline", metavar="PYTHON[:APP]",
                        help="also run another build of the engine, interleaved: the python of a venv that has it "
                             "installed, and its Faust app module (default orderbank.engine.stream.app)")
    parser.add_argument("--workers", type=worker_counts, default=[1], metavar="N[,N...]",
                        help="engine workers in one group, each count run in turn, and the peer with as many "
                             "stream threads (e.g. 1,2; default 1)")
    args = parser.parse_args()
    baseline = None
    if args.baseline:
        python, _, app = args.baseline.partition(":")
        baseline = Build(python, app or APP)
    peer = ready_peer(Peer(args.peer_dir, args.peer_store)) if args.peer else None
    if not args.peer:
        print("peer: not run (--no-peer)")
    if not args.naive:
        print("naive Faust agent: not run (--naive runs it: ~2,000 events/s)")
    scenario = preset(args.preset, args.orders or (150_000 if args.preset == "small" else None))
    lines = launches(scenario, args.seed, args.models)
    runs: dict[str, list[float]] = {CEILING: []}
    for workers in args.workers:
        runs |= {applied_label(workers): [], published_label(workers): []}
    if peer is not None:
        runs |= {label: [] for workers in args.workers for label in peer_labels(workers)}
    if baseline is not None:
        runs |= {BASE_APPLIED: [], BASE_PUBLISHED: []}
    usage: dict[str, list[Usage]] = {}  # by the figure whose window it covers
    timeline = Timeline()
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        bootstrap = args.bootstrap
        if bootstrap is None:
            # Workers started together join the group together, as on a cluster (Kafka's default delay).
            join_delay_ms = 3000 if max(args.workers) > 1 else 0
            broker = stack.enter_context(Broker(BrokerSettings(state_dir=tmp / "kafka", join_delay_ms=join_delay_ms)))
            bootstrap = broker.bootstrap
            if broker.pid is not None:
                timeline.watch(broker.pid, BROKER)
        if not available():
            print("CPU per event: not measured (no /proc on this system)")
        elif args.bootstrap is not None:
            print("CPU per event: the broker's not measured (--bootstrap: not this run's process)")
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix, input_partitions=PARTITIONS)
        launched = f"{scenario.name} launch of {scenario.orders:,} orders" + (
            f" for each of {', '.join(MODELS[:args.models])}" if args.models > 1 else "")
        print(f"{len(lines):,} events ({launched}, seed {args.seed}) "
              f"into {prefix}.events ({PARTITIONS} partitions) on Apache Kafka at {bootstrap}")
        asyncio.run(produce(settings, lines))
        tune_gc()  # the ceiling too runs with the worker's collector settings
        if args.naive:  # first: its long run also warms the broker's JVM up for the others
            runs[NAIVE] = [naive(bootstrap, prefix, len(lines), tmp)]
        for run in range(args.runs):  # alternately, so that a slower spell of the machine hits all
            seconds, used = asyncio.run(ceiling(settings, len(lines), timeline))
            runs[CEILING].append(seconds)
            usage.setdefault(CEILING, []).append(used)
            for workers in args.workers:
                applied, published, used = engine(bootstrap, prefix, len(lines), tmp / f"engine-{run}-{workers}",
                                                  timeline, workers=workers)
                runs[applied_label(workers)].append(applied)
                runs[published_label(workers)].append(published)
                usage.setdefault(published_label(workers), []).append(used)
            if peer is not None:
                for threads in args.workers:
                    peer_run = peer.run(bootstrap, f"{prefix}.events", len(lines), threads, timeline)
                    folded, projected = peer_labels(threads)
                    runs[folded].append(peer_run.folded_s)
                    runs[projected].append(peer_run.projected_s)
                    if peer_run.first_input_at is not None:
                        usage.setdefault(projected, []).append(Usage(timeline.spent(
                            peer_run.first_input_at, peer_run.first_input_at + peer_run.projected_s),
                            peer_run.projected_s))
            if baseline is not None:
                applied, published, used = engine(bootstrap, prefix, len(lines), tmp / f"baseline-{run}", timeline,
                                                  baseline)
                runs[BASE_APPLIED].append(applied)
                runs[BASE_PUBLISHED].append(published)
                usage.setdefault(BASE_PUBLISHED, []).append(used)
            print(f"run {run + 1} of {args.runs} done", flush=True)
    report({name: sorted(len(lines) / seconds for seconds in times) for name, times in runs.items()})
    if available():
        report_cpu(usage, len(lines))


def launches(scenario: Scenario, seed: int, models: int) -> list[bytes]:
    """The launch of each of the first `models` MODELS (seeds `seed`, `seed` + 1, ...), in time order."""
    logs = [generate(replace(scenario, model=model), seed + i) for i, model in enumerate(MODELS[:models])]
    return [orjson.dumps(doc) for doc in heapq.merge(*logs, key=itemgetter("occurred_at"))]


def worker_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",")]
    if not counts or min(counts) < 1 or max(counts) > PARTITIONS:
        raise argparse.ArgumentTypeError(f"worker counts are 1 to {PARTITIONS} (the input's partitions), got {text}")
    return counts


def ready_peer(peer: Peer) -> Peer | None:
    """The peer, built; None (said in one line) when it cannot run here."""
    why = peer.missing()
    if why is None:
        if not peer.built():
            print(f"building the Kafka Streams peer into {BUILD_DIR} (first use: mvn package, a minute or two) ...",
                  flush=True)
        try:
            peer.build()
        except (PeerFailed, OSError, subprocess.TimeoutExpired) as exc:
            why = f"its build failed: {exc}"
    if why is not None:
        print(f"peer: skipped, {why}")
        return None
    print(f"peer: Kafka Streams, {peer.store} store ({peer.folder}, built in {BUILD_DIR})")
    return peer


def report(rates: dict[str, list[float]]) -> None:
    """Each figure's median and runs, then the ratios the issue sets targets for (for each count of workers)."""
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{'':40} {'events/s (median)':>17} {'of ceiling':>10}   each run, events/s")
    for name, values in rates.items():
        print(f"{name:40} {median[name]:17,.0f} {median[name] / median[CEILING]:10.0%}   "
              f"{', '.join(f'{r:,.0f}' for r in values)}")
    counts = [workers for workers in range(1, PARTITIONS + 1) if applied_label(workers) in median]
    ratios = []
    for workers in counts:
        applied, published = median[applied_label(workers)], median[published_label(workers)]
        who, folded, projected = "engine" if workers == 1 else f"engine x{workers}", *peer_labels(workers)
        if folded in median:
            peer = "peer" if workers == 1 else f"peer x{workers}"
            ratios += [(f"{who} / {peer}, applied vs RESULT", applied / median[folded], 2.0),
                       (f"{who} / {peer}, published vs projections", published / median[projected], 2.0)]
        ratios += [(f"{who} / ceiling, applied", applied / median[CEILING], 0.8),
                   (f"{who} / ceiling, published", published / median[CEILING], 0.8)]
    if PEER_FOLDED in median:
        ratios.append(("ceiling / peer", median[CEILING] / median[PEER_FOLDED], 3.0))
    print("issue #17's targets (medians):")
    for name, ratio, target in ratios:
        shown, wanted = (f"{ratio:.0%}", f"{target:.0%}") if target < 1 else (f"{ratio:.2f}x", f"{target:g}x")
        print(f"  {name:42} {shown:>7}   target >= {wanted}: {'met' if ratio >= target else 'NOT met'}")
    for workers in counts[1:] if 1 in counts else []:
        print(f"{workers} workers / 1: applied {median[applied_label(workers)] / median[APPLIED]:.2f}x, "
              f"published {median[published_label(workers)] / median[PUBLISHED]:.2f}x")
    if BASE_APPLIED in median:
        print(f"this build / baseline: applied {median[APPLIED] / median[BASE_APPLIED]:.2f}x, "
              f"published {median[PUBLISHED] / median[BASE_PUBLISHED]:.2f}x")


def report_cpu(usage: dict[str, list[Usage]], events: int) -> None:
    """Each timed window's CPU per event and cores kept busy, by part (medians of the runs), then what twice the
    peer's rate would leave the engine on this machine once the broker has its share at the engine's cost."""
    if not usage:
        return
    parts = sorted({part for runs in usage.values() for run in runs for part in run.cpu})
    cores = os.cpu_count() or 1
    print(f"CPU in each timed window, µs per event (cores busy), medians of the runs; {cores} cores here:")
    print(f"{'':40} " + " ".join(f"{part:>15}" for part in [*parts, "together"]))
    per_event: dict[str, dict[str, float]] = {}
    for name, runs in usage.items():
        per_event[name] = {part: statistics.median(run.cpu.get(part, 0.0) for run in runs) / events * 1e6
                           for part in parts}
        together = statistics.median(sum(run.cpu.values()) for run in runs) / events * 1e6
        busy = {part: statistics.median(run.cpu.get(part, 0.0) / run.wall for run in runs) for part in parts}
        cells = [f"{per_event[name][part]:7.1f} ({busy[part]:4.2f})" if per_event[name][part] else f"{'-':>15}"
                 for part in parts]
        total_busy = statistics.median(sum(run.cpu.values()) / run.wall for run in runs)
        print(f"{name:40} " + " ".join(cells) + f" {together:7.1f} ({total_busy:4.2f})")
    engine, peer = per_event.get(PUBLISHED), usage.get(PEER_PROJECTED)
    if engine is None or peer is None or not engine.get(BROKER):
        return
    twice = 2 * events / statistics.median(run.wall for run in peer)  # events/s
    left = cores / twice * 1e6 - engine[BROKER]
    spent = engine.get(WORKER, 0.0) + engine.get(INGEST, 0.0)
    print(f"twice the peer's rate is {twice:,.0f} events/s: {cores} cores give {cores / twice * 1e6:.1f} CPU-µs an "
          f"event, the broker took {engine[BROKER]:.1f} of them in the engine's run, which leaves {left:.1f} for "
          f"the worker and its ingest (they spent {spent:.1f}; the ceiling's one process, reading and folding "
          f"with no output, {per_event[CEILING].get(OWN, 0.0):.1f})")


if __name__ == "__main__":
    main()
