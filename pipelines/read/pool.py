"""The one reader of a curated pool (what `refinery curate` published), for every job that reads one.

A pool is read by columns and by location, never whole: a location is (file, row), the row counted from the
start of one of the `kept/` shards the pool's manifest lists. Pieces are the files' Parquet row groups, so a
reader holds one row group of the columns it asked for at a time. The held-out split is by document id alone
(`split_value`), so it never depends on how the pool is sharded.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.runtime import storage
from pipelines.config.base import ConfigError


def split_value(doc_id: str) -> float:
    """A uniform number in [0, 1) from a document id: held out when below the held-out fraction."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) / 2**32


def is_heldout(doc_id: str, fraction: float) -> bool:
    return split_value(doc_id) < fraction


def split_values(ids: Sequence[str]) -> np.ndarray:
    return np.array([split_value(i) for i in ids], dtype=np.float64)


def id_hash(doc_id: str, *salt: object) -> int:
    """A 64-bit number from a document id (and a salt): seeded orders and samples that ignore the layout."""
    text = ":".join([*map(str, salt), doc_id])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class PoolFile:
    path: str
    groups: tuple[int, ...]  # rows of each row group

    @property
    def rows(self) -> int:
        return sum(self.groups)

    def group_starts(self) -> np.ndarray:
        return np.cumsum((0,) + self.groups)


class CuratedPool:
    """The kept shards of a curated pool, as its manifest lists them. `key` names the config key in errors."""

    def __init__(self, folder: str, key: str = "pool") -> None:
        self.folder = folder
        manifest_path = os.path.join(folder, "manifest.json")
        try:
            body = storage.read_bytes(manifest_path)
            manifest = json.loads(body)
            names = [entry["path"] for entry in manifest["kept"]]
        except FileNotFoundError:
            raise ConfigError(f"{key}: {folder} is not a curated pool (no manifest.json; run `refinery curate` "
                              "and point here at its output)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{key}: {manifest_path} is not the manifest of a refinery curate output "
                              f"({type(exc).__name__})") from None
        self.manifest_hash = hashlib.sha256(body).hexdigest()[:16]
        self.files: list[PoolFile] = []
        schema = None
        for name in names:
            path = os.path.join(folder, "kept", name)
            try:
                with storage.arrow_input(path) as source:
                    meta = pq.ParquetFile(source).metadata
            except (OSError, pa.ArrowException) as exc:
                raise ConfigError(f"{key}: {path}, listed in the pool's manifest, cannot be read "
                                  f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
            schema = schema or meta.schema.to_arrow_schema()
            self.files.append(PoolFile(path, tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups))))
        if not self.files:
            raise ConfigError(f"{key}: the pool {folder} has no kept documents")
        self.schema: pa.Schema = schema
        missing = [c for c in ("id", "text", "source") if c not in schema.names]
        if missing:
            raise ConfigError(f"{key}: {folder} is not a refinery curate output (its shards lack {missing})")

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def require(self, column: str, key: str) -> None:
        if column not in self.schema.names:
            raise ConfigError(f"{key}: the pool has no column {column!r} (columns: {', '.join(self.schema.names)})")

    def pieces(self) -> list[tuple[int, int]]:
        """(file, row group) of every piece, in pool order."""
        return [(i, g) for i, f in enumerate(self.files) for g in range(len(f.groups))]

    def read_piece(self, file: int, group: int, columns: Sequence[str]) -> pa.Table:
        """One row group's `columns`, with `row` (the row in its file) added."""
        f = self.files[file]
        cols = [c for c in dict.fromkeys(columns) if c != "row"]
        with storage.arrow_input(f.path) as source:
            table = pq.ParquetFile(source).read_row_group(group, columns=cols)
        start = int(f.group_starts()[group])
        return table.append_column("row", pa.array(np.arange(start, start + table.num_rows, dtype=np.int64)))

    def scan(self, columns: Sequence[str]) -> Iterator[tuple[int, pa.Table]]:
        """(file, table) for every piece in pool order: one row group in memory at a time."""
        for file, group in self.pieces():
            yield file, self.read_piece(file, group, columns)

    def group_of(self, file: int, rows: np.ndarray) -> np.ndarray:
        """The row group of each row of a file."""
        return np.searchsorted(self.files[file].group_starts(), rows, side="right") - 1

    def take(self, file: int, group: int, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """`columns` of the given rows (all in one row group of `file`), in the order given."""
        table = self.read_piece(file, group, columns)
        start = int(self.files[file].group_starts()[group])
        return table.take(pa.array(np.asarray(rows, dtype=np.int64) - start))

    def values(self, column: str) -> Iterator[pa.Array]:
        """One column, piece by piece."""
        for _, table in self.scan([column]):
            yield table.column(column).combine_chunks()
