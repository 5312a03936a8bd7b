"""What the steps after staging pass each other: small records about rows, never their text.

A row is named by its unit's index and its row number in the unit, or by its global number `g`: the rows of
the units before it (units in order) plus its row number. Units of one file are consecutive byte ranges read in
order, so `g` is the same whether a file is read whole or in ranges, and so is every decision that orders rows
by it. A `Decision` is what a step made of one row: rejected with a reason, or kept with its duplicate cluster
noted. Every unit travels as `(index, [Decision, ...])`; a later step's decision on a row replaces an earlier one.
"""
from __future__ import annotations

import pickle
import re
from typing import Any, Iterable, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

NAMESPACE = "refinery"
DATA = "refinery.data"  # bytes of text staged, bytes through shuffles


class Decision(NamedTuple):
    row: int
    reason: str | None  # None: kept; its duplicate cluster is noted
    detail: str | None  # dedup: the survivor's id (the final write spells the detail out)
    cluster: str | None
    size: int | None


class UnitInfo(NamedTuple):
    """What staging a unit gives the steps after it."""

    source: str
    rows: int  # every row of the unit, kept so far or rejected
    text_bytes: int


_HEX = re.compile(r"[0-9a-f]{32}")
PACKED = np.dtype([("row", "<u4"), ("reason", "u1"), ("survivor", "V16"), ("cluster", "V16"), ("size", "<i4")])


class Decisions(list):
    """A list of Decision that travels packed: 41 bytes a decision (ids as raw bytes), free-text details aside."""

    def __reduce__(self) -> tuple:
        return _unpack, _pack(self)


def _pack(decisions: list[Decision]) -> tuple[bytes, list[str | None], list[tuple | None]]:
    a = np.zeros(len(decisions), dtype=PACKED)
    reasons: list[str | None] = [None]
    texts: list[tuple | None] = []  # (detail, cluster) where they are not ids
    for i, d in enumerate(decisions):
        if d.reason not in reasons:
            reasons.append(d.reason)
        a[i]["row"], a[i]["reason"], a[i]["size"] = d.row, reasons.index(d.reason), d.size or 0
        if all(v is None or _HEX.fullmatch(v) for v in (d.detail, d.cluster)):  # ids: 16 raw bytes each
            for field, value in (("survivor", d.detail), ("cluster", d.cluster)):
                if value is not None:
                    a[i][field] = bytes.fromhex(value)
            texts.append(None)
        else:
            texts.append((d.detail, d.cluster))
    return a.tobytes(), reasons, texts if any(t is not None for t in texts) else []


def _unpack(raw: bytes, reasons: list[str | None], texts: list[tuple | None]) -> Decisions:
    a = np.frombuffer(raw, dtype=PACKED)
    out = Decisions()
    for i, rec in enumerate(a):
        if texts and texts[i] is not None:
            detail, cluster = texts[i]
        else:
            detail = bytes(rec["survivor"]).hex() if any(bytes(rec["survivor"])) else None
            cluster = bytes(rec["cluster"]).hex() if any(bytes(rec["cluster"])) else None
        out.append(Decision(int(rec["row"]), reasons[rec["reason"]], detail, cluster, int(rec["size"]) or None))
    return out


def merge(*lists: Iterable[Decision]) -> Decisions:
    """One decision per row, the last one given winning, in row order."""
    out: dict[int, Decision] = {}
    for decisions in lists:
        for d in decisions:
            out[d.row] = d
    return Decisions(out[r] for r in sorted(out))


def offsets(infos: list[tuple[int, UnitInfo]], n_units: int) -> np.ndarray:
    """The global number of every unit's first row (index n_units: the total)."""
    rows = np.zeros(n_units + 1, dtype=np.int64)
    for index, info in infos:
        rows[index + 1] = info.rows
    return np.cumsum(rows)


def unit_of(g: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit index, row) of global row numbers."""
    index = np.searchsorted(starts, g, side="right") - 1
    return index, g - starts[index]


def measure(element: Any, what: str) -> Any:
    """Count the bytes of an element on its way into a shuffle (pickled, as the runner moves it)."""
    Metrics.counter(DATA, f"shuffled_bytes.{what}").inc(len(pickle.dumps(element, protocol=5)))
    return element


class Shuffle(beam.PTransform):
    """GroupByKey, with the bytes that go through it counted under `what`."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Measure" >> beam.Map(measure, self.what) | "Group" >> beam.GroupByKey()


class CoGroup(beam.PTransform):
    """CoGroupByKey of named inputs, with the bytes that go through it counted under `what`."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def expand(self, inputs: dict[str, Any]) -> Any:
        measured = {name: pc | f"Measure{name}" >> beam.Map(measure, self.what) for name, pc in inputs.items()}
        return measured | "Group" >> beam.CoGroupByKey()


class Then(beam.PTransform):
    """Join each unit's decisions so far with a step's new decisions on it (units with none keep theirs)."""

    def __init__(self, new: Any, what: str) -> None:
        super().__init__()
        self.new, self.what = new, what

    def expand(self, decided: Any) -> Any:
        return (
            {"before": decided, "new": self.new}
            | "Join" >> CoGroup(self.what)
            | "Merge" >> beam.Map(lambda kv: (kv[0], merge(*kv[1]["before"], *kv[1]["new"])))
        )


def data_movement(result: Any) -> dict[str, Any]:
    """Bytes of text staged, and bytes that went through shuffles (pickled, as the runner moves them)."""
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, Any] = {"text_bytes": 0, "shuffled_bytes": 0, "shuffled_by_step": {}}
    for c in result.metrics().query(MetricsFilter().with_namespace(DATA))["counters"]:
        value = int((c.committed if c.committed is not None else c.attempted) or 0)
        name = c.key.metric.name
        if name.startswith("shuffled_bytes."):
            step = name.split(".", 1)[1]
            out["shuffled_by_step"][step] = out["shuffled_by_step"].get(step, 0) + value
            out["shuffled_bytes"] += value
        else:
            out[name] = out.get(name, 0) + value
    out["shuffled_by_step"] = dict(sorted(out["shuffled_by_step"].items()))
    out["shuffled_per_text_byte"] = round(out["shuffled_bytes"] / out["text_bytes"], 4) if out["text_bytes"] else None
    return out
