"""Imports a job needs only later (the MinHash library at a unit's first flush, the charting library for the data
card at the end), run in one background thread once the workers have started.

Imported in the job's serial start, they lengthen it: a thread importing beside the main thread shares its
interpreter lock, so the pipeline's build waits as long. Imported where first used, they stall a worker and the
extractor it feeds (the MinHash library, with scipy, is half a second). Once the workers run, the driver's
threads use about a quarter of the lock and the imports fit beside them.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

WAIT_S = 10.0  # where no worker starts in this process (workers in other processes), the imports start anyway
_WORKING = threading.Event()
_LOCK = threading.Lock()
_QUEUED: list[Callable[[], Any]] = []
_THREAD: threading.Thread | None = None


def import_later(*imports: Callable[[], Any], first: bool = False) -> None:
    """Call these importing functions in the background thread (before those queued already, with `first`),
    once a worker of this process has started (working()) or WAIT_S has passed. Code that needs a module still
    imports it: it waits for an import under way, or makes it where the thread has not come to it."""
    global _THREAD
    with _LOCK:
        if first:
            _QUEUED[0:0] = imports
        else:
            _QUEUED.extend(imports)
        if _THREAD is None or not _THREAD.is_alive():
            _THREAD = threading.Thread(target=_run, name="import-later", daemon=True)
            _THREAD.start()


def working() -> None:
    """A worker has started: the queued imports may run."""
    _WORKING.set()


def _run() -> None:
    _WORKING.wait(WAIT_S)
    while True:
        with _LOCK:
            if not _QUEUED:
                return
            call = _QUEUED.pop(0)
        try:
            call()
        except Exception:  # noqa: BLE001 - the code that needs the module imports it again and reports it
            pass
