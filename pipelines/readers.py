"""Readers: one input file in, documents (or rejected rows) out.

Every record a reader finds ends as exactly one yielded row: a document for the next stage, or a rejected
row with a `read:*` reason. A file that cannot be opened at all yields one rejected row for the file.
HTML documents carry their undecoded page under the private key `_html` until extraction.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from typing import Any, BinaryIO, Iterator

import pyarrow.parquet as pq

from .config import ExtractSettings, Source
from .schema import new_doc, reject
from .splits import is_multimember_gzip, line_start, skip_line, warc_start

Row = dict[str, Any]

GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.I)
HTML_TYPES = ("text/html", "application/xhtml+xml")


class TooLarge(Exception):
    pass


def open_stream(path: str) -> BinaryIO:
    """A binary stream over the file, gunzipped when the name ends in .gz."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_limited(path: str, limit: int) -> bytes:
    """The whole (decompressed) file, or TooLarge past `limit` bytes: a gzip bomb never fills memory."""
    with open_stream(path) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"more than {limit} bytes")
    return data


def looks_binary(data: bytes, max_ratio: float) -> bool:
    head = data[:8192]
    if not head:
        return False
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control / len(head) > max_ratio


class Mislabelled(ValueError):
    """The declared charset does not decode the page, and neither does UTF-8."""


def decode_html(data: bytes, http_charset: str | None = None) -> tuple[str, str]:
    """Decode a page by its declared charset (BOM, HTTP header, <meta>), else as strict UTF-8; returns (text,
    charset used). A page whose declared charset fails but which is valid UTF-8 is read as UTF-8.

    Raises UnicodeDecodeError when nothing is declared and the bytes are not UTF-8, Mislabelled when a declared
    charset fails and the bytes are not UTF-8 either, and LookupError for an unknown declared charset.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    charset = http_charset
    if not charset:
        m = _META_CHARSET.search(data[:4096])
        charset = m.group(1).decode("ascii") if m else None
    if not charset:
        return data.decode("utf-8"), "utf-8"
    try:
        return data.decode(charset), charset.lower()
    except UnicodeDecodeError as exc:
        try:
            return data.decode("utf-8"), f"utf-8 (declared {charset.lower()})"
        except UnicodeDecodeError:
            raise Mislabelled(f"declared {charset.lower()}, but {_first_bad_byte(exc)}, and not UTF-8 either") from exc


def _with_html(doc: Row, data: bytes, http_charset: str | None = None) -> Row:
    """The document with its decoded page under `_html`, or a rejected row saying why it cannot be decoded."""
    try:
        doc["_html"], charset = decode_html(data, http_charset)
    except UnicodeDecodeError as exc:
        return reject(doc, "read:invalid_utf8", f"no charset declared and {_first_bad_byte(exc)}")
    except Mislabelled as exc:
        return reject(doc, "read:mislabelled_charset", str(exc))
    except LookupError as exc:
        return reject(doc, "read:unknown_charset", str(exc))
    doc["metadata"]["bytes"] = len(data)
    doc["metadata"]["charset"] = charset
    return doc


def _brief(exc: BaseException) -> str:
    """An exception as one short printable line (messages may quote the binary bytes at fault)."""
    text = f"{type(exc).__name__}: {exc}"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)[:300]


def _first_bad_byte(exc: UnicodeDecodeError) -> str:
    return f"invalid {exc.encoding} at byte {exc.start}"


# ---- one-document-per-file formats ----------------------------------------------------------------

def _whole_file(source: Source, path: str, uri: str, settings: ExtractSettings) -> tuple[Row, bytes | None]:
    doc = new_doc(source=source.name, source_uri=uri, locator="file", fmt=source.format)
    try:
        size = os.path.getsize(path)
        if not path.endswith(".gz") and size > settings.max_doc_bytes:
            return reject(doc, "extract:too_large", f"{size} bytes > extract.max_doc_bytes={settings.max_doc_bytes}"), None
        data = read_limited(path, settings.max_doc_bytes)
    except TooLarge as exc:
        return reject(doc, "extract:too_large", f"decompressed {exc} (extract.max_doc_bytes)"), None
    except GZIP_ERRORS as exc:
        return reject(doc, "read:corrupt_gzip", f"{type(exc).__name__}: {exc}"), None
    except OSError as exc:
        return reject(doc, "read:io_error", f"{type(exc).__name__}: {exc}"), None
    if not data.strip():
        return reject(doc, "read:empty", f"{len(data)} bytes"), None
    if looks_binary(data, settings.binary_ratio):
        return reject(doc, "read:binary", "NUL or control bytes: not a text file"), None
    return doc, data


def read_html(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    doc, data = _whole_file(source, path, uri, settings)
    if data is None:
        yield doc
        return
    yield _with_html(doc, data)


def read_text(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    doc, data = _whole_file(source, path, uri, settings)
    if data is None:
        yield doc
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield reject(doc, "read:invalid_utf8", _first_bad_byte(exc))
        return
    doc["text"] = text
    doc["extractor"] = "text"
    doc["metadata"]["bytes"] = len(data)
    yield doc


# ---- many-records-per-file formats -----------------------------------------------------------------

def _fields_to_doc(doc: Row, record: dict, source: Source) -> Row | None:
    """Fill text/url/metadata from a JSONL or Parquet record; None when the text field is missing."""
    text = record.get(source.text_field)
    if not isinstance(text, str):
        return None
    doc["text"] = text
    url = record.get(source.url_field)
    doc["url"] = url if isinstance(url, str) else None
    doc["extractor"] = "passthrough"
    for key in ("license", "consent"):  # the record knows better than its source's default
        if isinstance(record.get(key), str) and record[key]:
            doc[key] = record[key]
    doc["metadata"].update(
        {k: v for k, v in record.items() if k not in (source.text_field, source.url_field, "license", "consent")}
    )
    return doc


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
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    yield reject(new(locator), "read:invalid_utf8", _first_bad_byte(exc))
                    continue
                except json.JSONDecodeError as exc:
                    yield reject(new(locator), "read:invalid_json", str(exc))
                    continue
                except RecursionError:
                    yield reject(new(locator), "read:invalid_json", "nested too deeply")
                    continue
                if not isinstance(record, dict):
                    yield reject(new(locator), "read:invalid_json", f"expected an object, got {type(record).__name__}")
                    continue
                doc = _fields_to_doc(new(locator), record, source)
                if doc is None:
                    yield reject(new(locator), "read:no_text", f"no string field {source.text_field!r}")
                    continue
                yield doc
    except GZIP_ERRORS as exc:
        yield reject(new(f"offset:{after}+"), "read:corrupt_gzip", f"{type(exc).__name__}: {exc}; rest of file lost")
    except OSError as exc:
        yield reject(new(f"offset:{after}+"), "read:io_error", f"{type(exc).__name__}: {exc}")


def read_parquet(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    def new(locator: str) -> Row:
        return new_doc(source=source.name, source_uri=uri, locator=locator, fmt="parquet")

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others for a bad file
        yield reject(new("file"), "read:corrupt_parquet", f"{type(exc).__name__}: {exc}")
        return
    if source.text_field not in pf.schema_arrow.names:
        yield reject(new("file"), "read:no_text_column",
                     f"no column {source.text_field!r} (columns: {', '.join(pf.schema_arrow.names)})")
        return
    row_no = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                locator = f"row:{row_no}"
                row_no += 1
                doc = _fields_to_doc(new(locator), record, source)
                if doc is None:
                    yield reject(new(locator), "read:no_text", f"{source.text_field!r} is null or not a string")
                elif len(doc["text"]) > settings.max_doc_bytes:
                    yield reject(doc | {"text": None}, "extract:too_large", f"{len(doc['text'])} chars > extract.max_doc_bytes")
                else:
                    yield doc
    except Exception as exc:
        yield reject(new(f"row:{row_no}+"), "read:corrupt_parquet", f"{type(exc).__name__}: {exc}; rest of file lost")


def _status_and_type(record: Any) -> tuple[str, str]:
    """HTTP status and Content-Type of a WARC record (a resource record has no HTTP headers: status 200)."""
    if record.http_headers is None:
        return "200", record.rec_headers.get_header("Content-Type") or ""
    return record.http_headers.get_statuscode() or "", record.http_headers.get_header("Content-Type") or ""


def _is_html(ctype: str) -> bool:
    return ctype.lower().split(";")[0].strip() in HTML_TYPES


def _wants_body(record: Any) -> bool:
    status, ctype = _status_and_type(record)
    return status.startswith("2") and _is_html(ctype)


def _warc_row(record: Any, offset: int, body: bytes, new: Any, settings: ExtractSettings) -> Row:
    status, ctype = _status_and_type(record)
    doc = new(f"offset:{offset}", record.rec_headers.get_header("WARC-Target-URI"))
    doc["metadata"]["warc_record_id"] = record.rec_headers.get_header("WARC-Record-ID")
    date = record.rec_headers.get_header("WARC-Date")
    if date:
        doc["metadata"]["warc_date"] = date
    if not status.startswith("2"):
        return reject(doc, "read:http_status", f"HTTP status {status}")
    if not _is_html(ctype):
        return reject(doc, "read:unsupported_content_type", ctype or "no Content-Type")
    if len(body) > settings.max_doc_bytes:
        return reject(doc, "extract:too_large", f"payload > extract.max_doc_bytes={settings.max_doc_bytes}")
    if not body.strip():
        return reject(doc, "read:empty", "empty payload")
    if looks_binary(body, settings.binary_ratio):
        return reject(doc, "read:binary", "NUL or control bytes in an HTML payload")
    m = _HTTP_CHARSET.search(ctype)
    return _with_html(doc, body, m.group(1) if m else None)


def read_warc(source: Source, path: str, uri: str, settings: ExtractSettings,
              start: int = 0, end: int | None = None) -> Iterator[Row]:
    """One row per response or resource record starting in [start, end) (the whole file by default).

    A damaged record becomes one `read:corrupt_warc` row; reading goes on at the next record found after it
    (a gzip member or a version line whose headers check out), so good records after a bad one are kept.
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    def new(locator: str, url: str | None = None) -> Row:
        return new_doc(source=source.name, source_uri=uri, locator=locator, fmt="warc", url=url)

    try:
        # the standard WARC.gz has a gzip member per record: warcio reads it raw and offsets are file offsets. A
        # WARC gzipped as one stream is read through gzip instead, and offsets are in the inflated stream.
        # (a byte range is only ever planned for a member-per-record file: no need to probe it again)
        members = path.endswith(".gz") and (end is not None or is_multimember_gzip(path))
        single_stream = path.endswith(".gz") and not members
        fh: Any = gzip.open(path, "rb") if single_stream else open(path, "rb")
    except OSError as exc:
        yield reject(new(f"offset:{start}+"), "read:io_error", f"{type(exc).__name__}: {exc}")
        return
    with fh:
        limit = end if end is not None else float("inf")
        position: int | None = warc_start(fh, start, limit, members)
        while position is not None:
            fh.seek(position)
            records = None
            try:
                records = ArchiveIterator(fh)  # the offsets it reports are file offsets: it starts at fh.tell()
                for record in records:
                    if records.offset >= limit:
                        return  # this record starts in the next range
                    if record.rec_type not in ("response", "resource"):
                        continue  # warcinfo, request, metadata: not documents
                    body = record.content_stream().read(settings.max_doc_bytes + 1) if _wants_body(record) else b""
                    records.read_to_end(record)
                    yield _warc_row(record, records.get_record_offset(), body, new, settings)
                return
            except (ArchiveLoadFailed, *GZIP_ERRORS, ValueError, OSError) as exc:
                reason = "read:io_error" if type(exc) is OSError else "read:corrupt_warc"
                offset = records.offset if records is not None else position  # the record being read
                if offset >= limit:
                    return  # the next range reads (and reports) it
                position = warc_start(fh, offset + 1, limit, members)
                lost = "rest of file lost" if position is None else f"bytes {offset}-{position} skipped"
                yield reject(new(f"offset:{offset}+"), reason, f"{_brief(exc)}; {lost}")


def read_pdf(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    """The PDF's bytes, for the PDF extractor (one document per file)."""
    doc = new_doc(source=source.name, source_uri=uri, locator="file", fmt="pdf")
    limit = settings.pdf.max_bytes
    try:
        size = os.path.getsize(path)
        if size > limit:
            yield reject(doc, "extract:too_large", f"{size} bytes > extract.pdf.max_bytes={limit}")
            return
        data = read_limited(path, limit)
    except TooLarge as exc:
        yield reject(doc, "extract:too_large", f"decompressed {exc} (extract.pdf.max_bytes)")
        return
    except GZIP_ERRORS as exc:
        yield reject(doc, "read:corrupt_gzip", f"{type(exc).__name__}: {exc}")
        return
    except OSError as exc:
        yield reject(doc, "read:io_error", f"{type(exc).__name__}: {exc}")
        return
    if not data.strip():
        yield reject(doc, "read:empty", f"{len(data)} bytes")
        return
    doc["_pdf"] = data
    doc["metadata"]["bytes"] = len(data)
    yield doc


READERS = {
    "html": read_html,
    "text": read_text,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "warc": read_warc,
    "pdf": read_pdf,
}


def read_file(source: Source, path: str, uri: str, settings: ExtractSettings,
              start: int = 0, end: int | None = None) -> Iterator[Row]:
    """All rows of one input file, or of the records that start in [start, end) of a split one, in file order."""
    if start == 0 and end is None:
        yield from READERS[source.format](source, path, uri, settings)
    else:
        yield from READERS[source.format](source, path, uri, settings, start, end)  # type: ignore[call-arg]


