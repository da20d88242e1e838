"""The ingest in a process of its own, beside its worker, so that reading and routing the input runs
on another core than folding.

A worker's main thread folds frames, writes the changelog and publishes; reading the input topic,
routing its events and writing the frames took ~15% of that thread (bench/stream.py, py-spy). With
`ingest=process` (the default) the worker starts `python -m orderbank.engine.stream.ingest_process`, which runs the
same orderbank.engine.stream.ingest.Ingest with a producer of its own. The worker writes the child its settings on
stdin (the Kafka security settings the child reads from the environment, as the worker did) and
reads an `IngestProgress` line from its stdout four times a second, for its health view and metrics.

The two live and die together: the child stops cleanly when its stdin closes (the worker stopping
or gone) and, on Linux, is killed with the worker (PR_SET_PDEATHSIG), so no ingest outlives the
worker that owned it; the worker crashes when the child exits unasked, as it does when an ingest
running inside it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from faust.utils.terminal import SpinnerHandler
from mode import Service

from orderbank.engine.dev.children import die_with
from orderbank.engine.kafka.sink import Sink
from orderbank.engine.settings import Settings
from orderbank.engine.stream.collector import tune_gc
from orderbank.engine.stream.ingest import Ingest, IngestProgress

log = logging.getLogger(__name__)
REPORT_EVERY_S = 0.25
STOP_TIMEOUT_S = 15.0
_encode = msgspec.json.Encoder().encode
_PROGRESS = msgspec.json.Decoder(IngestProgress)


def console_level() -> int:
    """The level the worker's log prints at, for its ingest process to print at too. Not the root logger's alone:
    a Faust worker with its terminal spinner (`faust -A ... worker -l warn`, not quiet) sets that to DEBUG, so that
    every record turns the spinner, and leaves the level asked for to its handlers. Given the root's level, the
    ingest process formatted and wrote a debug line for each request of its Kafka clients (a produce request's
    repr: ~2% of the process)."""
    root = logging.getLogger()
    printing = [handler.level for handler in root.handlers if not isinstance(handler, SpinnerHandler)]
    return max(root.getEffectiveLevel(), min(printing, default=logging.NOTSET))


class IngestProcess(Service):
    """The worker's side: starts the child, keeps its latest progress, stops it with the worker."""

    def __init__(self, settings: Settings, on_fatal: Callable[[BaseException], Awaitable[None]],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.on_fatal = settings, on_fatal
        self._proc: asyncio.subprocess.Process | None = None
        self._progress = IngestProgress()

    def progress(self) -> IngestProgress:
        """The child's state and what it did since the last call."""
        done, self._progress = self._progress, IngestProgress(partitions=self._progress.partitions,
                                                        lag=self._progress.lag,
                                                        first_fetch_at=self._progress.first_fetch_at)
        return done

    async def on_start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orderbank.engine.stream.ingest_process", str(os.getpid()),
            str(console_level()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self._proc.stdin is not None
        self._proc.stdin.write(self.settings.model_dump_json().encode() + b"\n")
        await self._proc.stdin.drain()
        self.add_future(self._follow(self._proc))

    async def _follow(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._progress.add(_PROGRESS.decode(line))
        code = await proc.wait()
        if not self.should_stop:
            await self.on_fatal(RuntimeError(f"the ingest process exited with code {code}"))

    async def on_stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # asks the child to stop: it leaves the consumer group cleanly
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the ingest process did not stop in %.0fs: killing it", STOP_TIMEOUT_S)
            proc.kill()
            await proc.wait()


async def _serve(settings: Settings) -> int:
    """The child: run the ingest until stdin closes; report its progress on stdout."""
    loop = asyncio.get_running_loop()
    failed: list[BaseException] = []
    done = asyncio.Event()

    async def fatal(exc: BaseException) -> None:
        log.error("ingest failed: %r", exc)
        failed.append(exc)
        done.set()

    sink = Sink(settings)
    ingest = Ingest(settings, sink, on_fatal=fatal)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    watcher = asyncio.ensure_future(stdin.read())  # returns at EOF: the worker wants us to stop, or is gone
    watcher.add_done_callback(lambda _: done.set())
    loop.add_signal_handler(signal.SIGTERM, done.set)
    await sink.start()
    await ingest.start()
    tune_gc()
    out = sys.stdout.buffer
    try:
        while not done.is_set():
            out.write(_encode(ingest.progress()) + b"\n")
            out.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), REPORT_EVERY_S)
    finally:
        watcher.cancel()
        await ingest.stop()
        await sink.stop()
    return 1 if failed else 0


def main() -> None:
    parent, level = map(int, sys.argv[1:3])
    die_with(parent, signal.SIGKILL)  # elsewhere than Linux, stdin's end stops us
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] [ingest] %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the worker, which stops us in order
    settings = Settings.from_env(**msgspec.json.decode(sys.stdin.buffer.readline()))
    sys.exit(asyncio.run(_serve(settings)))


if __name__ == "__main__":
    main()
