"""Worker processes for CPU-bound work (the importer's rendering).

Workers are spawned as fresh interpreters, never forked: a fork copies the parent as it
is, threads' held locks and open database connections included, and the parent (a test
runner, a server, a command that has loaded the embedding model) may hold threads.
Each sets Django up, and ends itself when the process that started it dies (a killed
import must not leave workers behind).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from multiprocessing.pool import Pool

PARENT_CHECK_SECONDS = 0.2


def pool(processes: int) -> Pool:
    """A pool of `processes` spawned workers, each with Django set up."""
    return multiprocessing.get_context("spawn").Pool(processes, initializer=_start, initargs=(os.getpid(),))


def _start(parent: int) -> None:
    import django

    django.setup()
    threading.Thread(target=_end_with, args=(parent,), name="parent-watch", daemon=True).start()


def _end_with(parent: int) -> None:
    # An orphan is adopted by another process: a killed parent never closes the task
    # queue, so an idle worker would otherwise wait on it for ever.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)
