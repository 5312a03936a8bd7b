"""The small records dedup shuffles: row numbers and keys of a unit packed per partition, the staged columns of
the rows still in play, runs of equal keys."""
from __future__ import annotations

import zlib
from typing import Any, Iterable, Iterator

import numpy as np

from pipelines.dedup.signals import quality
from pipelines.runtime.decisions import Decision
from pipelines.runtime.staging import read_staged


def hex_id(hi: int, lo: int) -> str:
    return f"{int(hi):016x}{int(lo):016x}"


def halves(hexes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([int(h[:16], 16) for h in hexes], dtype=np.uint64),
            np.array([int(h[16:32], 16) for h in hexes], dtype=np.uint64))


def open_rows(folder: str, decisions: list[Decision], columns: list[str],
               rows: np.ndarray | None = None) -> dict[str, np.ndarray | list]:
    """The staged columns of the rows no stage has rejected yet (of `rows` only, when given)."""
    table = read_staged(folder, ["reason"] + columns, None if rows is None else rows.tolist())
    rejected = {d.row for d in decisions if d.reason is not None}
    rows = table.column("row").to_numpy()
    keep = np.array([r is None for r in table.column("reason").to_pylist()], dtype=bool)
    if rejected:
        keep &= ~np.isin(rows, np.fromiter(rejected, dtype=np.int64, count=len(rejected)))
    out: dict[str, Any] = {"row": rows[keep]}
    where = np.flatnonzero(keep)
    for c in columns:
        values = table.column(c).to_pylist()
        out[c] = [values[i] for i in where]
    return out


def qualities(scores: list, score_name: str | None) -> np.ndarray:
    return np.array([quality({"scores": s}, score_name) for s in scores], dtype=np.float64)


def partitioned(records: np.ndarray, key: np.ndarray, partitions: int) -> Iterator[tuple[int, np.ndarray]]:
    part = (key % np.uint64(partitions)).astype(np.int64)
    for p in np.unique(part):
        yield int(p), records[part == p]


def groups(keys: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Index arrays of the runs of equal keys (rows already sorted by them) with more than one member."""
    n = len(keys[0])
    if n < 2:
        return
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n)
    multi = ends - starts > 1
    for s, e in zip(starts[multi].tolist(), ends[multi].tolist()):
        yield np.arange(s, e)


def pack(index: int, rows: np.ndarray, keys: np.ndarray, partitions: int) -> Iterator[tuple[int, tuple]]:
    """Row numbers and 64-bit keys of one unit as compact parts, one per partition (key % partitions): row
    deltas, zlib-compressed, and the key's high 32 bits (with the partition, 32 + log2(partitions) bits)."""
    part = (keys % np.uint64(partitions)).astype(np.int64)
    for p in np.unique(part):
        sel = part == p
        deltas = np.diff(rows[sel], prepend=0).astype("<u4")
        yield int(p), (index, zlib.compress(deltas.tobytes(), 1), (keys[sel] >> np.uint64(32)).astype("<u4").tobytes())


def unpack(parts: Iterable[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit index, row, key) arrays of packed parts."""
    index, rows, keys = [], [], []
    for i, rz, kb in parts:
        r = np.cumsum(np.frombuffer(zlib.decompress(rz), dtype="<u4").astype(np.int64))
        index.append(np.full(len(r), i, dtype=np.int64))
        rows.append(r)
        keys.append(np.frombuffer(kb, dtype="<u4"))
    return np.concatenate(index), np.concatenate(rows), np.concatenate(keys)
