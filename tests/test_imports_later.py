"""pipelines/runtime/later.py: imports queued for later wait for a worker to start (or WAIT_S), run the urgent
ones first, and one that fails does not stop the rest."""
from __future__ import annotations

import threading
import time

import pytest

from pipelines.runtime import later


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(later, "_WORKING", threading.Event())
    monkeypatch.setattr(later, "_QUEUED", [])
    monkeypatch.setattr(later, "_THREAD", None)
    return later


def test_imports_wait_for_a_worker_then_run_the_urgent_first(fresh, monkeypatch):
    monkeypatch.setattr(fresh, "WAIT_S", 60.0)
    done: list[str] = []
    fresh.import_later(lambda: done.append("charts"))
    fresh.import_later(lambda: done.append("minhash"), lambda: 1 / 0, first=True)
    time.sleep(0.2)
    assert done == [] and fresh._THREAD.is_alive()  # no worker yet: nothing imported
    fresh.working()
    fresh._THREAD.join(10)
    assert done == ["minhash", "charts"] and not fresh._THREAD.is_alive()


def test_imports_start_anyway_where_no_worker_starts_here(fresh, monkeypatch):
    monkeypatch.setattr(fresh, "WAIT_S", 0.05)
    done: list[str] = []
    fresh.import_later(lambda: done.append("charts"))
    fresh._THREAD.join(10)
    assert done == ["charts"]
    fresh.import_later(lambda: done.append("again"))  # a thread that has ended is started again
    fresh._THREAD.join(10)
    assert done == ["charts", "again"]
