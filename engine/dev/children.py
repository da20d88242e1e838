"""Child processes that die with the process that started them, and stopping them in order.

The worker's ingest, `orderbank up`'s worker and broker, and the brokers of tests and benchmarks
are children that mean nothing without their parent: if it is killed (SIGKILL, the OOM killer, a CI
timeout), Linux sends them a signal of their choosing (PR_SET_PDEATHSIG) instead of leaving a
worker or a 512 MB JVM running with nobody to stop it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
# Looked up once here: a preexec_fn runs between fork and exec, where loading a library could wait
# on a lock another thread of the parent held when it forked.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with(parent: int, sig: signal.Signals) -> None:
    """Be sent `sig` when `parent`, this process's parent, dies, however it dies (Linux only; elsewhere
    children stop by their own means: the ingest on its stdin's end, brokers by atexit)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), sig)


def tied_to_this_process(sig: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` for Popen that ties the child to this process, or None where that cannot hold.

    The kernel signals the child when the *thread* that forked it ends, so only children forked by
    the main thread, which ends with the process, are tied."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    return lambda: die_with(parent, sig)


def stop_child(child: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, grace: float = 30) -> None:
    """Signal a child started with start_new_session=True (and its children); SIGKILL after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
