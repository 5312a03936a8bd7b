"""One survivor per key: exact text (the normalised text's hash) and URL (the normalised URL, the newest or best
row kept). Every row's key alone is shuffled first, packed; only rows whose key is shared send what picks the
survivor."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np

from pipelines.config.curate import DedupSettings
from pipelines.dedup.packed import groups, halves, hex_id, open_rows, pack, partitioned, qualities, unpack
from pipelines.runtime.decisions import Decision, Decisions, Shuffle, Then


KEYED = [("h1", "<u8"), ("h2", "<u8"), ("q", "<f8"), ("n", "<i8"), ("id1", "<u8"), ("id2", "<u8"), ("unit", "<u4"),
         ("row", "<u4")]


def _keyed_records(index: int, cols: dict[str, Any], h1: np.ndarray, h2: np.ndarray, score_name: str | None,
                   dates: list[str] | None = None) -> np.ndarray:
    a = np.zeros(len(h1), dtype=KEYED + ([("date", "S32")] if dates is not None else []))
    a["h1"], a["h2"] = h1, h2
    if dates is not None:
        a["date"] = [d.encode("utf-8", "replace")[:32] for d in dates]
    a["q"] = qualities(cols["scores"], score_name)
    a["n"] = cols["n_chars"]
    a["id1"], a["id2"] = halves(cols["id"])
    a["unit"], a["row"] = index, cols["row"]
    return a


def _by_unit(decisions: list[tuple[int, Decision]]) -> Iterator[tuple[int, Decisions]]:
    out: dict[int, Decisions] = {}
    for index, d in decisions:
        out.setdefault(index, Decisions()).append(d)
    yield from out.items()


def _choose(a: np.ndarray, newest: bool, reason: str, annotate: bool) -> Iterator[tuple[int, list[Decision]]]:
    """One survivor per group of equal (h1, h2): the first in rank order; the rest rejected with `reason`."""
    newest = newest and "date" in a.dtype.names
    date_rank = np.unique(a["date"], return_inverse=True)[1].astype(np.int64) if newest else np.zeros(len(a), np.int64)
    order = np.lexsort((a["id2"], a["id1"], -a["n"], -a["q"], -date_rank, a["h2"], a["h1"]))
    a = a[order]
    out: list[tuple[int, Decision]] = []
    for members in groups([a["h1"], a["h2"]]):
        g = a[members]
        survivor = hex_id(g["id1"][0], g["id2"][0])
        cluster = hex_id(g["h1"][0], g["h2"][0]) if annotate else None
        size = len(g) if annotate else None
        for i, rec in enumerate(g):
            if i == 0:
                if annotate:
                    out.append((int(rec["unit"]), Decision(int(rec["row"]), None, None, cluster, size)))
                continue
            out.append((int(rec["unit"]), Decision(int(rec["row"]), reason, survivor, cluster, size)))
    yield from _by_unit(out)


def _repeated(parts: Iterable[tuple]) -> Iterator[tuple[int, np.ndarray]]:
    """(unit index, rows) of the rows whose key another row shares."""
    index, rows, keys = unpack(parts)
    values, counts = np.unique(keys, return_counts=True)
    shared = np.isin(keys, values[counts > 1])
    for i in np.unique(index[shared]):
        yield int(i), rows[shared & (index == i)]


class _KeyedDedup(beam.PTransform):
    """One survivor per key. First every row's key alone is shuffled, packed; then only the rows whose key is
    shared send what picks the survivor (full hash, quality, length, id).

    A subclass names its columns and gives `keys(values)` (positions of the rows that have a key, their 64-bit
    keys) and `records(index, cols)` (the packed records of the rows whose key is shared)."""

    what = ""
    reason = ""
    key_column = ""
    columns: list[str] = []

    def __init__(self, settings: DedupSettings, folders: list[str], partitions: int) -> None:
        super().__init__()
        self.score_name, self.newest = settings.quality_score, settings.url_keep == "newest"
        self.folders, self.partitions = folders, partitions

    def expand(self, decided: Any) -> Any:
        folders, partitions = self.folders, self.partitions

        def keys(item: tuple[int, list[Decision]]) -> Iterator[tuple[int, tuple]]:
            index, decisions = item
            cols = open_rows(folders[index], decisions, [self.key_column])
            where, k = self.keys(cols[self.key_column])
            yield from pack(index, cols["row"][where], k, partitions)

        def records(index: int, rows: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
            wanted = np.unique(np.concatenate(list(rows)))
            cols = open_rows(folders[index], [], self.columns, wanted)
            a = self.records(index, cols)
            yield from partitioned(a, a["h1"], partitions)

        newest, reason, annotate = self.newest, self.reason, self.what == "exact"
        new = (decided
               | "Keys" >> beam.FlatMap(keys)
               | "ByKey" >> Shuffle(f"{self.what}_keys")
               | "Shared" >> beam.FlatMapTuple(lambda _, parts: _repeated(parts))
               | "ByUnit" >> Shuffle(f"{self.what}_rows")
               | "Records" >> beam.FlatMapTuple(records)
               | "ByHash" >> Shuffle(self.what)
               | "Choose" >> beam.FlatMapTuple(
                   lambda _, parts: _choose(np.concatenate(list(parts)), newest, reason, annotate)))
        return decided | "Then" >> Then(new, "decisions")


class ExactDedup(_KeyedDedup):
    """Rows with the same normalised-text hash: one survivor, the rest `dedup:exact`."""

    what, reason, key_column = "exact", "dedup:exact", "content_hash"
    columns = ["content_hash", "n_chars", "id", "scores"]

    def keys(self, values: list) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(values)), np.array([int(h[:16], 16) for h in values], dtype=np.uint64)

    def records(self, index: int, cols: dict[str, Any]) -> np.ndarray:
        h1, h2 = halves(cols["content_hash"])
        return _keyed_records(index, cols, h1, h2, self.score_name)


class UrlDedup(_KeyedDedup):
    """Rows with the same normalised URL: keep the newest (or the best), the rest `dedup:url`."""

    what, reason, key_column = "url", "dedup:url", "url_key"
    columns = ["url_key", "date", "n_chars", "id", "scores"]

    def keys(self, values: list) -> tuple[np.ndarray, np.ndarray]:
        where = np.array([i for i, k in enumerate(values) if k is not None], dtype=np.int64)
        return where, np.array([values[i] for i in where], dtype=np.uint64)

    def records(self, index: int, cols: dict[str, Any]) -> np.ndarray:
        keys = np.array(cols["url_key"], dtype=np.uint64)
        return _keyed_records(index, cols, keys, np.zeros(len(keys), np.uint64), self.score_name,
                              [d or "" for d in cols["date"]])
