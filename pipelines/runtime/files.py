"""Files, written whole or not at all, their digests, and the texts inside them (local paths or URLs)."""
from __future__ import annotations

import contextlib
import gzip
import json
import os

from pipelines.runtime import storage
from typing import IO, TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import pyarrow as pa


@contextlib.contextmanager
def atomic_path(path: str, sync: bool = False) -> Iterator[str]:
    """A temporary name beside a local `path` to write to, for libraries that write by name; renamed to `path`
    when the block ends without an error, so `path` is never seen half-written. `sync`: on disk before the
    rename (a commit that must survive a crash). A URL is written through `atomic_open` instead."""
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
def arrow_output(path: str, sync: bool = False) -> Iterator[Any]:
    """What pyarrow writes to: a temporary local name renamed when done (`atomic_path`), or an object upload
    that completes when the block ends without an error."""
    if storage.is_url(path):
        with storage.writer(path, "wb") as fh:
            yield fh
    else:
        with atomic_path(path, sync) as tmp:
            yield tmp


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", sync: bool = False) -> Iterator[IO[Any]]:
    """A file (or object) that appears whole when the block ends without an error, and not at all otherwise
    (see `storage.writer`)."""
    with storage.writer(path, mode, sync) as fh:
        yield fh


def read_parquet(source: Any, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file's table (only `columns`, in that order) from a path or an open file, read through its
    footer and column chunks alone. pq.read_table gives the same table through Arrow's dataset layer: about a
    millisecond more for each small file (a staged piece is read by several steps), and a quarter of a second
    for each of a process's first two reads, while that layer starts."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(source) as parquet:
        return parquet.read(columns=columns)


def write_json(path: str, body: Any, indent: int | None = 2) -> None:
    """JSON with sorted keys, written atomically."""
    with atomic_open(path) as fh:
        json.dump(body, fh, indent=indent, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def save_png(fig: Any, path: str) -> None:
    """A matplotlib figure as a PNG, written whole (in a bucket too)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    storage.write_bytes(path, buffer.getvalue())


def sha256_file(path: str) -> str:
    """The hex sha256 of a file's bytes."""
    return storage.sha256(path)


def read_texts(path: str, text_field: str = "text") -> Iterator[str]:
    """The non-empty texts of a file, by its name (`.gz` is read through gzip): Parquet (the `text_field`
    column), JSONL (each record's `text_field`; a record without it but with `context` and `gold`, an eval
    task, gives "context gold"), anything else is one plain text."""
    import io

    import pyarrow.parquet as pq

    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".parquet"):
        with storage.arrow_input(path) as source:
            yield from (t for t in pq.read_table(source, columns=[text_field]).column(text_field).to_pylist() if t)
        return
    raw = storage.open(path, "rb")
    with io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw, encoding="utf-8") as fh, raw:
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
