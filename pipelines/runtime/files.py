"""Files, written whole or not at all, their digests, and the texts inside them."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
from typing import IO, Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str, sync: bool = False) -> Iterator[str]:
    """A temporary name beside `path` to write to; renamed to `path` when the block ends without an error, so
    `path` is never seen half-written. `sync`: on disk before the rename (a commit that must survive a crash)."""
    tmp = path + ".tmp"
    try:
        yield tmp
        if sync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", sync: bool = False) -> Iterator[IO[Any]]:
    """`open(path, mode)` through a temporary file and a rename (see `atomic_path`)."""
    with atomic_path(path, sync) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh


def write_json(path: str, body: Any, indent: int | None = 2) -> None:
    """JSON with sorted keys, written atomically."""
    with atomic_open(path) as fh:
        json.dump(body, fh, indent=indent, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def sha256_file(path: str) -> str:
    """The hex sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_texts(path: str, text_field: str = "text") -> Iterator[str]:
    """The non-empty texts of a file, by its name (`.gz` is read through gzip): Parquet (the `text_field`
    column), JSONL (each record's `text_field`; a record without it but with `context` and `gold`, an eval
    task, gives "context gold"), anything else is one plain text."""
    import pyarrow.parquet as pq

    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".parquet"):
        yield from (t for t in pq.read_table(path, columns=[text_field]).column(text_field).to_pylist() if t)
        return
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        if not name.endswith(".jsonl"):
            text = fh.read()
            if text:
                yield text
            return
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: not a JSON record ({exc})") from None
            text = rec.get(text_field) if isinstance(rec, dict) else None
            if text is None and isinstance(rec, dict) and "context" in rec and "gold" in rec:
                text = f"{rec['context']} {rec['gold']}"
            if isinstance(text, str) and text:
                yield text
