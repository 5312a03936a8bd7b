"""JSON Lines: one record per line, read whole or from a byte range; the locator is the line's byte offset."""
from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.read.common import GZIP_ERRORS, brief, first_bad_byte, open_stream, record_to_doc
from pipelines.read.splits import line_start, skip_line
from pipelines.schema import Row, new_doc, reject

def _lines(fh: BinaryIO, offset: int, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(offset, line, length) for every line from the stream's position; `line` is None for a line longer than
    `limit`, which is skipped in bounded pieces instead of being held in memory."""
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        length = len(raw)
        if length > limit and not raw.endswith(b"\n"):
            length += skip_line(fh)
            yield offset, None, length
        else:
            yield offset, raw, length
        offset += length


def _no_constant(name: str) -> None:
    """NaN, Infinity and -Infinity are not JSON: such a value is read as null."""
    return None


def read_jsonl(source: Source, path: str, uri: str, settings: ExtractSettings,
               start: int = 0, end: int | None = None) -> Iterator[Row]:
    """One row per line starting in [start, end) (the whole file by default); the locator is the line's byte
    offset in the (decompressed) file, so ids do not depend on how the file is split."""
    def new(locator: str) -> Row:
        return new_doc(source=source.name, source_uri=uri, locator=locator, fmt="jsonl")

    total = 0
    after = start  # where the next line starts: a broken stream loses the rest from there
    try:
        with open_stream(path) as fh:
            if start:
                after = line_start(fh, start)
                fh.seek(after)
            for offset, raw, length in _lines(fh, after, settings.max_doc_bytes):
                if end is not None and offset >= end:
                    return
                after = offset + length
                total += length
                locator = f"offset:{offset}"
                if total > settings.max_decompressed_bytes:
                    yield reject(new(f"offset:{offset}+"), "read:too_large",
                                 f"file passes extract.max_decompressed_bytes={settings.max_decompressed_bytes}; rest not read")
                    return
                if raw is None:
                    yield reject(new(locator), "extract:too_large", f"{length} bytes > extract.max_doc_bytes")
                    continue
                if not raw.strip():
                    yield reject(new(locator), "read:empty", "blank line")
                    continue
                if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a byte-order mark opens the file, not the record
                try:
                    record = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
                except UnicodeDecodeError as exc:
                    yield reject(new(locator), "read:invalid_utf8", first_bad_byte(exc))
                    continue
                except RecursionError:
                    yield reject(new(locator), "read:invalid_json", "nested too deeply")
                    continue
                except ValueError as exc:  # JSONDecodeError, and a number too long to convert
                    yield reject(new(locator), "read:invalid_json", brief(exc))
                    continue
                if not isinstance(record, dict):
                    yield reject(new(locator), "read:invalid_json", f"expected an object, got {type(record).__name__}")
                    continue
                doc = record_to_doc(new(locator), record, source)
                if doc is None:
                    yield reject(new(locator), "read:no_text", f"no string field {source.text_field!r}")
                    continue
                yield doc
    except GZIP_ERRORS as exc:
        yield reject(new(f"offset:{after}+"), "read:corrupt_gzip", f"{type(exc).__name__}: {exc}; rest of file lost")
    except OSError as exc:
        yield reject(new(f"offset:{after}+"), "read:io_error", f"{type(exc).__name__}: {exc}")
