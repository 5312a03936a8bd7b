"""Work sharing between the local runner's worker threads: a worker whose own units are done stages units the
others have not started.

Beam's in-process runner deals a step's elements out to its workers before the step starts, so a worker whose
units hold slower pages finishes last while the others wait (WCXB's dev pages on two workers: one idle for 6 s of
a 55 s staging step). With a board of claims, every worker claims a unit before it stages it; a worker at the end
of its own units (finish_bundle) claims and stages any unit still free, and the worker that was dealt a unit
another has claimed passes it by. Each unit is staged once and its UnitInfo comes out once, whoever staged it.

The board is a set in this process, so it serves workers that are threads of one process (curate's default for
HTML, WARC and PDF sources); with worker processes or another runner, units stay where the runner deals them.
"""
from __future__ import annotations

import threading
import uuid

from pipelines.read.splits import Unit

_LOCK = threading.Lock()
_CLAIMED: dict[str, set[int]] = {}  # run token -> indexes of the units claimed


class Claims:
    """The claims of one run. Pickled with the step's DoFn: the copies the runner's threads hold share the board
    by the run's token."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = list(units)
        self.token = uuid.uuid4().hex

    def claim(self, index: int) -> bool:
        """True for the first caller of a unit, False for any later one."""
        with _LOCK:
            claimed = _CLAIMED.setdefault(self.token, set())
            if index in claimed:
                return False
            claimed.add(index)
            return True

    def next_free(self) -> int | None:
        """Claim the first unit nobody has claimed: its index, or None when none is left."""
        with _LOCK:
            claimed = _CLAIMED.setdefault(self.token, set())
            for index in range(len(self.units)):
                if index not in claimed:
                    claimed.add(index)
                    return index
        return None

    def forget(self) -> None:
        """Drop the board (the driver, when the run is over)."""
        with _LOCK:
            _CLAIMED.pop(self.token, None)
