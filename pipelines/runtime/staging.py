"""Staged units: where a worker writes the rows of the unit it read, once, and every later step reads them.

A unit's rows live in `OUTPUT/.work/<run key>/<unit key>/` as Parquet pieces (`piece-<first row>.parquet`, the
rows of one flush, written through a temporary name, synced and renamed), then `done.json` once the whole unit
is staged. The pieces are the unit's checkpoint: a rerun skips a unit with `done.json` without reading its input,
and in a unit without it skips the records its pieces hold. Later steps read only the columns they need (ids,
hashes, band keys) and the final write reads the rows once more, in row order.
"""
from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.runtime.files import atomic_open, atomic_path
from pipelines.schema import STAGED_SCHEMA, Row, to_table

DONE = "done.json"


def unit_folder(work: str, unit_key: str) -> str:
    return os.path.join(work, unit_key)


def write_piece(folder: str, rows: list[Row]) -> str:
    """Stage a flush of rows (each with its `row` number) as one piece; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"piece-{min(r['row'] for r in rows):010d}.parquet")
    with atomic_path(path, sync=True) as tmp:  # on disk before the rename that makes it part of the unit
        pq.write_table(to_table(rows, True, STAGED_SCHEMA), tmp, compression="zstd", compression_level=1)
    return path


def pieces(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if n.startswith("piece-") and n.endswith(".parquet")]


def mark_done(folder: str, rows: int) -> None:
    os.makedirs(folder, exist_ok=True)
    with atomic_open(os.path.join(folder, DONE), sync=True) as fh:
        json.dump({"rows": rows}, fh)


def is_done(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, DONE))


def finished_ids(folder: str) -> set[str]:
    """Ids of the rows the unit's pieces hold. A piece that cannot be read (a power loss can leave a renamed file
    empty) is deleted: its records are done again."""
    out: set[str] = set()
    for path in pieces(folder):
        try:
            out.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
        except (OSError, pa.ArrowInvalid):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    return out


def read_staged(folder: str, columns: list[str], rows: Any = None) -> pa.Table:
    """The unit's rows (only `columns`, plus `row`) in row order; with `rows`, only those row numbers."""
    cols = list(dict.fromkeys(["row"] + columns))
    tables = []
    for table in staged_pieces(folder, cols):
        if rows is not None:
            table = table.filter(pc.is_in(table.column("row"), value_set=pa.array(rows, pa.int64())))
        tables.append(table)
    if not tables:
        return STAGED_SCHEMA.empty_table().select(cols)
    return pa.concat_tables(tables)


def staged_pieces(folder: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The unit's pieces one at a time, in row order (pieces hold disjoint, ascending runs of rows)."""
    for path in pieces(folder):
        table = pq.read_table(path, columns=columns)
        yield table.sort_by("row") if table.num_rows > 1 else table
