"""Worker processes that end with the process that started them, even after kill -9 (when
nothing gets the chance to shut the pool down)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 1.0


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A spawn-context process pool whose workers die with this process."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker as soon as process `parent` is gone."""
    if sys.platform.startswith("linux"):
        # The kernel sends SIGKILL when the parent dies: immediate, and needs no thread.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl took effect; and elsewhere there is no
    # prctl: a daemon thread notices the change of parent (we get re-parented).
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="die-with-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
