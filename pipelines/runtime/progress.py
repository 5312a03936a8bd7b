"""Live progress of a local run: workers drop small counter files, the driver sums and prints them.

Beam Metrics are only readable once a run ends; these files let a long local run say how far it got.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid

from pipelines.runtime import storage
from pipelines.runtime.files import write_json


class Progress:
    """Counters of one DoFn instance, flushed to `<dir>/<stage>-<uuid>.json` at most once a second (once in ten
    seconds in a bucket, where each flush is a request)."""

    def __init__(self, folder: str | None, stage: str) -> None:
        self.path = os.path.join(folder, f"{stage}-{uuid.uuid4().hex}.json") if folder else None
        self.stage = stage
        self.counts: dict[str, int] = {}
        self.last = 0.0
        self.every = 10.0 if folder and storage.is_url(folder) else 1.0

    def add(self, **counts: int) -> None:
        for key, n in counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and now - self.last < self.every):
            return
        self.last = now
        try:
            write_json(self.path, {"stage": self.stage, **self.counts}, indent=None)
        except OSError:
            pass  # the folder went away: the run is over


def totals(folder: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        names = storage.listdir(folder)
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            body = json.loads(storage.read_bytes(os.path.join(folder, name)))
        except (OSError, ValueError):
            continue
        body.pop("stage", None)
        for key, n in body.items():
            out[key] = out.get(key, 0) + int(n)
    return out


def watch(folder: str, n_units: int, stop: threading.Event, every: float = 2.0) -> None:
    """Print a progress line to stderr every `every` seconds until `stop` is set."""
    start = time.monotonic()
    if storage.is_url(folder):
        every = max(every, 10.0)
    while not stop.wait(every):
        t = totals(folder)
        elapsed = time.monotonic() - start
        docs = t.get("documents", 0)
        print(
            f"[curate {elapsed:6.0f}s] inputs {t.get('files', 0)}/{n_units} · records read {t.get('records', 0)}"
            + (f" (from checkpoints {t['resumed']})" if t.get("resumed") else "")
            + f" · extracted+filtered {docs} ({docs / max(elapsed, 1e-9):.1f}/s) · passed {t.get('passed', 0)}"
            + (f" · PDF pages {t['pages']} (OCR {t.get('ocr_pages', 0)})" if t.get("pages") else ""),
            file=sys.stderr,
            flush=True,
        )
