"""Output: deterministic Parquet shards, written under a temporary name and renamed, and the manifest."""
from __future__ import annotations

import os
import shutil
from typing import Any

import pyarrow.parquet as pq

from .config.curate import WriteSettings
from .files import atomic_path, sha256_file
from .schema import to_table

KINDS = ("kept", "rejected")


def shard_name(index: int, count: int) -> str:
    return f"part-{index:05d}-of-{count:05d}.parquet"


def shard_of(doc_id: str, count: int) -> int:
    """The shard a row lands in: a function of its id only, so worker count and order never matter."""
    return int(doc_id[:8], 16) % count


def write_shard(rows: list[dict[str, Any]], path: str, rejected: bool, settings: WriteSettings) -> None:
    """Write rows sorted by id to `path` through `path.tmp` and an atomic rename."""
    rows = sorted(rows, key=lambda r: r["id"])
    table = to_table(rows, rejected=rejected)
    compression = None if settings.compression == "none" else settings.compression
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression=compression,
            compression_level=settings.compression_level if compression in ("zstd", "gzip") else None,
            row_group_size=settings.row_group_rows,
        )


def list_shards(folder: str) -> list[dict[str, Any]]:
    """rows, bytes and sha256 of every finished shard in a folder, by name."""
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".parquet"):
            continue
        path = os.path.join(folder, name)
        out.append(
            {
                "path": name,
                "rows": pq.ParquetFile(path).metadata.num_rows,
                "bytes": os.path.getsize(path),
                "sha256": sha256_file(path),
            }
        )
    return out


def publish(staging: str, output: str, kinds: tuple[str, ...] = KINDS) -> None:
    """Swap the staged folders (kept/ and rejected/ by default) into the output folder.

    Each folder is replaced whole: a reader sees the old complete set or the new complete set, and a shard
    from an earlier run with a different shard count never lingers beside the new ones. Calling it again after
    a crash part-way finishes the job: a folder already moved out of `staging` is skipped.
    """
    for kind in kinds:
        new, final, old = os.path.join(staging, kind), os.path.join(output, kind), os.path.join(output, f".old-{kind}")
        if not os.path.exists(new):
            continue  # published before the crash
        if os.path.exists(old):
            shutil.rmtree(old)
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(new, final)
        if os.path.exists(old):
            shutil.rmtree(old)
