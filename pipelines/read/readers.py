"""Readers: one input file in, documents (or rejected rows) out.

Every record a reader finds ends as exactly one yielded row: a document for the next stage, or a rejected
row with a `read:*` reason. A file that cannot be opened at all yields one rejected row for the file.
HTML documents carry their undecoded page under the private key `_html` until extraction.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import zlib
from typing import Any, BinaryIO, Iterator

import pyarrow.parquet as pq

from pipelines.config.curate import ExtractSettings, Source
from pipelines.schema import MAX_METADATA_DEPTH, Row, has_surrogate, is_rejected, nesting, new_doc, reject
from pipelines.read.splits import gzip_record_at, is_multimember_gzip, line_start, skip_line, warc_start


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
    """NUL bytes or too many control characters in the first 8 KB (UTF-16 with a byte-order mark is judged on
    its characters, not its bytes)."""
    head = data[:8192]
    if not head:
        return False
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if head.startswith(b"\xff\xfe") else "utf-16-be"
        chars = head[2 : len(head) - len(head) % 2].decode(codec, "replace")
        if not chars:
            return False
        control = sum(1 for c in chars if (ord(c) < 32 and c not in "\t\n\f\r") or c == "\ufffd")
        return control / len(chars) > max_ratio
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control / len(head) > max_ratio


class Mislabelled(ValueError):
    """The declared charset does not decode the page, and neither does UTF-8."""


_COMMENT = re.compile(rb"<!--.*?(?:-->|$)", re.S)
_UTF16 = ("utf-16le", "utf-16be")


def meta_charset(data: bytes) -> str | None:
    """The charset label a page's <meta> declares in its first 4 KB, comments skipped (the HTML prescan)."""
    m = _META_CHARSET.search(_COMMENT.sub(b"", data[:4096]))
    return m.group(1).decode("ascii") if m else None


def decode_html(data: bytes, http_charset: str | None = None) -> tuple[str, str]:
    """Decode a page; returns (text, charset used). Labels are read through the WHATWG encoding table (so
    "latin1" is windows-1252 and a Python-only codec such as "unicode_escape" is no label at all).

    A byte-order mark decides. Otherwise: bytes that are valid UTF-8 are UTF-8 (a legacy charset declared over
    them is recorded as "utf-8 (declared X)"); else the HTTP header's charset, then the <meta> one, the first
    that decodes the bytes; a <meta> naming UTF-16 on bytes without a BOM means UTF-8 (the HTML standard).
    Raises UnicodeDecodeError when nothing usable is declared and the bytes are not UTF-8, Mislabelled when
    declared charsets fail and the bytes are not UTF-8 either, and LookupError when the only labels declared
    are unknown and the bytes are not UTF-8.
    """
    import webencodings

    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8"
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le"), "utf-16le"
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be"), "utf-16be"
    labels = [label for label in (http_charset, meta_charset(data)) if label]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text, utf8_error = None, exc
    known = []
    for label in labels:
        encoding = webencodings.lookup(label.strip())
        if encoding is None:
            continue
        if encoding.name in _UTF16 or encoding.name == "x-user-defined":
            encoding = webencodings.lookup("utf-8" if encoding.name in _UTF16 else "windows-1252")
        known.append((label, encoding))
    if text is not None:
        if not labels or (known and known[0][1].name == "utf-8"):
            return text, "utf-8"
        return text, f"utf-8 (declared {labels[0].lower()})"
    first_failure = ""
    for label, encoding in known:
        try:
            return encoding.codec_info.decode(data, "strict")[0], encoding.name
        except UnicodeError as exc:
            bad = _first_bad_byte(exc) if isinstance(exc, UnicodeDecodeError) else str(exc)
            first_failure = first_failure or f"declared {label.lower()}, but {bad}"
    if known:
        raise Mislabelled(f"{first_failure}, and not UTF-8 either")
    if labels:
        raise LookupError(f"unknown charset {labels[0]!r} (not a WHATWG encoding label), and not UTF-8")
    raise utf8_error


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


def brief(exc: BaseException) -> str:
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
    """Fill text/url/metadata from a JSONL or Parquet record (a binary text field is decoded as UTF-8); None when
    the text field is missing."""
    text = record.get(source.text_field)
    if isinstance(text, bytes):  # a Parquet `binary` column: UTF-8 text stored without its type
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return reject(doc, "read:invalid_utf8", f"{source.text_field!r} (binary): {_first_bad_byte(exc)}")
    if not isinstance(text, str):
        return None
    if has_surrogate(text):
        return reject(doc, "read:invalid_unicode", f"{source.text_field!r} holds a lone UTF-16 surrogate "
                      f"(at character {next(i for i, c in enumerate(text) if has_surrogate(c))})")
    doc["text"] = text
    url = record.get(source.url_field)
    doc["url"] = url if isinstance(url, str) else None
    doc["extractor"] = "passthrough"
    for key in ("license", "consent"):  # the record knows better than its source's default
        if isinstance(record.get(key), str) and record[key]:
            doc[key] = record[key]
    for key, value in record.items():
        if key in (source.text_field, source.url_field, "license", "consent"):
            continue
        if nesting(value) > MAX_METADATA_DEPTH:  # every later step would recurse through it
            doc["metadata"].setdefault("dropped_metadata", {})[str(key)] = \
                f"nested deeper than {MAX_METADATA_DEPTH} levels"
        else:
            doc["metadata"][key] = value
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
                    yield reject(new(locator), "read:invalid_utf8", _first_bad_byte(exc))
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
            for record in _records(batch):
                locator = f"row:{row_no}"
                row_no += 1
                if isinstance(record, str):
                    yield reject(new(locator), "read:invalid_utf8", record)
                    continue
                doc = _fields_to_doc(new(locator), record, source)
                if doc is None:
                    yield reject(new(locator), "read:no_text", f"{source.text_field!r} is null or not a string")
                elif is_rejected(doc):  # invalid text: that row's rejection
                    yield doc
                elif len(doc["text"]) > settings.max_doc_bytes:
                    yield reject(doc | {"text": None}, "extract:too_large", f"{len(doc['text'])} chars > extract.max_doc_bytes")
                else:
                    yield doc
    except Exception as exc:  # noqa: BLE001  (pyarrow raises ArrowInvalid, OSError and others for a bad file)
        yield reject(new(f"row:{row_no}+"), "read:corrupt_parquet", f"{brief(exc)}; rest of file lost")


def _records(batch: Any) -> list[dict | str]:
    """The batch's rows as dicts; a row whose string column holds invalid UTF-8 (Parquet writers do not all
    check) is a str saying which column and byte, and the other rows of its batch are read as usual."""
    import pyarrow as pa

    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        pass
    strings = [i for i, f in enumerate(batch.schema) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    columns = [col.cast(pa.binary() if pa.types.is_string(col.type) else pa.large_binary()) if i in strings else col
               for i, col in enumerate(batch.columns)]
    raw = pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pylist()
    names = [batch.schema.names[i] for i in strings]
    out: list[dict | str] = []
    for record in raw:
        try:
            for name in names:
                if record[name] is not None:
                    record[name] = record[name].decode("utf-8")
            out.append(record)
        except UnicodeDecodeError as exc:
            out.append(f"column {name!r}: {_first_bad_byte(exc)}")
    return out


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


class BadEncoding(ValueError):
    """An HTTP body whose Content-Encoding refinery cannot (or could not) undo."""


def _payload(record: Any, limit: int) -> bytes:
    """The record's HTTP body with its Content-Encoding undone (gzip, deflate, br), at most `limit` + 1 bytes."""
    encoding = (record.http_headers.get_header("Content-Encoding") or "").strip().lower() if record.http_headers else ""
    if encoding in ("", "identity"):
        return record.content_stream().read(limit + 1)
    if encoding in ("gzip", "x-gzip", "deflate"):
        if encoding == "x-gzip":
            record.http_headers.replace_header("Content-Encoding", "gzip")
        try:
            return record.content_stream().read(limit + 1)
        except (zlib.error, EOFError) as exc:
            raise BadEncoding(f"Content-Encoding {encoding}: {brief(exc)}") from exc
    if encoding == "br":  # warcio's own brotli support is broken for brotli >= 1.1
        import brotli

        raw = record.raw_stream.read(limit + 1)
        try:
            return brotli.Decompressor().process(raw, output_buffer_limit=limit + 1)
        except brotli.error as exc:
            raise BadEncoding(f"Content-Encoding br: {brief(exc)}") from exc
    raise BadEncoding(f"unsupported Content-Encoding {encoding!r}")


def _warc_row(record: Any, locator: str, body: bytes | BadEncoding, new: Any, settings: ExtractSettings) -> Row:
    status, ctype = _status_and_type(record)
    doc = new(locator, record.rec_headers.get_header("WARC-Target-URI"))
    doc["metadata"]["warc_record_id"] = record.rec_headers.get_header("WARC-Record-ID")
    date = record.rec_headers.get_header("WARC-Date")
    if date:
        doc["metadata"]["warc_date"] = date
    if not status.startswith("2"):
        return reject(doc, "read:http_status", f"HTTP status {status}")
    if not _is_html(ctype):
        return reject(doc, "read:unsupported_content_type", ctype or "no Content-Type")
    if isinstance(body, BadEncoding):
        return reject(doc, "read:content_encoding", str(body))
    if len(body) > settings.max_doc_bytes:
        return reject(doc, "extract:too_large", f"payload > extract.max_doc_bytes={settings.max_doc_bytes}")
    if not body.strip():
        return reject(doc, "read:empty", "empty payload")
    if looks_binary(body, settings.binary_ratio):
        return reject(doc, "read:binary", "NUL or control bytes in an HTML payload")
    m = _HTTP_CHARSET.search(ctype)
    return _with_html(doc, body, m.group(1) if m else None)


def _warc_loader() -> Any:
    """warcio's record loader, but a response record without WARC-Target-URI still has its HTTP headers read
    (warcio fails on it with an AttributeError that would end the whole file)."""
    from warcio.recordloader import ArcWarcRecordLoader

    class Loader(ArcWarcRecordLoader):
        def load_http_headers(self, rec_type: str, uri: str | None, stream: Any, length: Any) -> Any:
            return super().load_http_headers(rec_type, "http:" if uri is None else uri, stream, length)

    logging.getLogger("warcio").setLevel(logging.ERROR)  # malformed headers become rows, not log lines
    return Loader(verify_http=False, arc2warc=False)


class Truncated(ValueError):
    """A WARC record's Content-Length runs past the end of the file."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def read_warc(source: Source, path: str, uri: str, settings: ExtractSettings,
              start: int = 0, end: int | None = None) -> Iterator[Row]:
    """One row per response or resource record starting in [start, end) (the whole file by default).

    A damaged record becomes one `read:corrupt_warc` row; reading goes on at the next record found after it
    (a gzip member or a version line whose headers check out), so good records after a bad one are kept.
    """
    from warcio.archiveiterator import ArchiveIterator

    def new(locator: str, url: str | None = None) -> Row:
        return new_doc(source=source.name, source_uri=uri, locator=locator, fmt="warc", url=url)

    try:
        # the standard WARC.gz has a gzip member per record: warcio reads it raw and offsets are file offsets. A
        # WARC gzipped as one stream is read through gzip instead, and offsets are in the inflated stream.
        # (a byte range is only ever planned for a member-per-record file: no need to probe it again)
        # a ".gz" name over plain bytes is read as the plain WARC it is
        gzipped = path.endswith(".gz") and _gzip_magic(path)
        members = gzipped and (end is not None or is_multimember_gzip(path))
        single_stream = gzipped and not members
        fh: Any = gzip.open(path, "rb") if single_stream else open(path, "rb")
    except OSError as exc:
        yield reject(new(f"offset:{start}+"), "read:io_error", f"{type(exc).__name__}: {exc}")
        return
    with fh:
        limit = end if end is not None else float("inf")
        position: int | None = _next_record(fh, start, limit, members)
        floor = start  # past the last record given a row: a failure is never placed before it
        size = os.path.getsize(path)
        after = position if position is not None else start  # where the last record read ends
        while position is not None:
            fh.seek(position)
            records = None
            try:
                records = ArchiveIterator(fh)  # the offsets it reports are file offsets: it starts at fh.tell()
                records.loader = _warc_loader()
                records.INC_RECORD = ""  # warcio writes a warning to stderr per malformed record; the row says it
                for record in records:
                    if records.offset >= limit:
                        if not members:
                            return  # this record starts in the next range
                        here = fh.tell()
                        starts = _starts_record(fh, records.offset)
                        fh.seek(here)
                        if starts:
                            return  # the next range starts there
                        # else a damaged record the next range cannot find: read (and report) it here
                    if record.rec_type in ("response", "resource"):  # warcinfo, request, metadata: not documents
                        body: bytes | BadEncoding = b""
                        if _wants_body(record):
                            try:
                                body = _payload(record, settings.max_doc_bytes)
                            except BadEncoding as exc:
                                body = exc
                        records.read_to_end(record)
                        if getattr(record.raw_stream, "limit", 0) > 0:  # Content-Length not reached: the file ends
                            raise Truncated(f"record ends {record.raw_stream.limit} bytes short of its "
                                            "Content-Length", records.get_record_offset())
                        floor = records.get_record_offset() + 1
                        after = floor - 1 + (records.get_record_length() or 0)
                        yield _warc_row(record, f"offset:{floor - 1}", body, new, settings)
                    records.read_to_end(record)  # (a no-op for a document: read already)
                    if members and records.next_line:
                        # this gzip member holds more records (a writer put several in one): read them apart
                        member = records.get_record_offset()
                        floor = max(floor, member + 1)
                        end_of_member = yield from _rest_of_member(fh, member, new, settings)
                        resume_at = end_of_member if end_of_member is not None else \
                            _next_record(fh, member + 1, limit, members)
                        break
                else:
                    resume_at = -1  # warcio read all it could
                if resume_at != -1:
                    if resume_at is None:
                        return
                    position = after = resume_at
                    continue
                # warcio stopped before the end of the file: what follows is damage, reported by this range when
                # it starts inside it, or when no other range can start there
                if members and after < size and (after < limit or not _starts_record(fh, after)):
                    raise Truncated("no WARC record where one should start", after)
                if not gzipped and end is None:  # a plain WARC read whole: bytes left over are a broken record
                    fh.seek(after)
                    if fh.read(1 << 16).strip():
                        raise Truncated("no complete WARC record where one should start", after)
                return
            except Exception as exc:  # noqa: BLE001  (any failure inside one record is that record's row)
                reason = "read:io_error" if type(exc) is OSError else "read:corrupt_warc"
                offset = records.offset if records is not None else position  # the record being read
                offset = exc.offset if isinstance(exc, Truncated) else offset
                offset = max(offset, position, floor)  # never behind what was read: reading always moves on
                if members and offset > position and _starts_record(fh, offset):
                    position = offset  # a sound member that failed in the middle of a stream: read it afresh,
                    continue           # as a range starting there would
                if offset >= limit and (not members or _starts_record(fh, offset)):
                    return  # the next range starts there, and reads (and reports) it
                # a damaged record just past this range: the next range cannot tell it from noise, so it is
                # reported here, as reading the whole file would
                position = _next_record(fh, offset + 1, limit, members)
                lost = "rest of file lost" if position is None else f"bytes {offset}-{position} skipped"
                yield reject(new(f"offset:{offset}+"), reason, f"{brief(exc)}; {lost}")


def _rest_of_member(fh: Any, offset: int, new: Any, settings: ExtractSettings) -> Iterator[Row]:
    """Rows for the second and later records of the gzip member at `offset` (a writer put several records in
    one member), located `offset:<member>#<k>`; returns where the next member starts."""
    fh.seek(offset)
    inflate = zlib.decompressobj(wbits=31)
    data = bytearray()
    while not inflate.eof:
        chunk = fh.read(1 << 16)
        if not chunk:
            break
        data += inflate.decompress(chunk)
        if len(data) > settings.max_decompressed_bytes:
            yield reject(new(f"offset:{offset}#1+"), "read:too_large",
                         f"gzip member passes extract.max_decompressed_bytes={settings.max_decompressed_bytes}")
            return None
    end = fh.tell() - len(inflate.unused_data)
    if not inflate.eof:
        raise Truncated("gzip member ends early", offset)
    from warcio.archiveiterator import ArchiveIterator

    records = ArchiveIterator(io.BytesIO(bytes(data)))
    records.loader = _warc_loader()
    k = 0
    try:
        for k, record in enumerate(records):
            if k == 0 or record.rec_type not in ("response", "resource"):
                continue
            body: bytes | BadEncoding = b""
            if _wants_body(record):
                try:
                    body = _payload(record, settings.max_doc_bytes)
                except BadEncoding as exc:
                    body = exc
            yield _warc_row(record, f"offset:{offset}#{k}", body, new, settings)
    except Exception as exc:  # noqa: BLE001  (a damaged record inside the member: the rest of the member)
        yield reject(new(f"offset:{offset}#{k + 1}+"), "read:corrupt_warc", f"{brief(exc)}; rest of gzip member lost")
    fh.seek(end)
    return end


def _gzip_magic(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _starts_record(fh: Any, offset: int) -> bool:
    try:
        return gzip_record_at(fh, offset)
    except (*GZIP_ERRORS, OSError, ValueError):
        return False


def _next_record(fh: Any, start: int, limit: float, members: bool) -> int | None:
    """warc_start, where a stream that cannot even be searched (a ".gz" that is not gzip) has no next record."""
    try:
        return warc_start(fh, start, limit, members)
    except (*GZIP_ERRORS, OSError, ValueError):
        return None


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


