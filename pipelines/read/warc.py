"""WARC (plain, gzipped per record, or gzipped whole): one row per response or resource record, read whole or
from a byte range; the locator is the record's offset."""
from __future__ import annotations

import io
import logging
import zlib
from typing import Any, Iterator

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.read.charsets import HTML_TYPES, HTTP_CHARSET, with_html
from pipelines.read.common import GZIP_ERRORS, brief, looks_binary, open_stream
from pipelines.runtime import storage
from pipelines.read.splits import gzip_record_at, is_multimember_gzip, warc_start
from pipelines.schema import Row, new_doc, reject

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


def _body(record: Any, settings: ExtractSettings) -> bytes | BadEncoding:
    """The payload a document record's row needs (b"" when its status or type rejects it anyway)."""
    if not _wants_body(record):
        return b""
    try:
        return _payload(record, settings.max_doc_bytes)
    except BadEncoding as exc:
        return exc


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
    m = HTTP_CHARSET.search(ctype)
    return with_html(doc, body, m.group(1) if m else None)


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
        found = storage.info(path)  # size and stamp
        # the members this process inflated while checking range boundaries are known by path and stamp
        known = f"{path}\0{found['stamp']}" if members else None
        fh: Any = open_stream(path, gunzip=single_stream)
    except OSError as exc:
        yield reject(new(f"offset:{start}+"), "read:io_error", f"{type(exc).__name__}: {exc}")
        return
    with fh:
        limit = end if end is not None else float("inf")
        position: int | None = _next_record(fh, start, limit, members, known)
        floor = start  # past the last record given a row: a failure is never placed before it
        size = found["size"]
        after = position if position is not None else start  # where the last record read ends
        while position is not None:
            fh.seek(position)
            records = None
            try:
                records = ArchiveIterator(fh)  # the offsets it reports are file offsets: it starts at fh.tell()
                records.loader = _warc_loader()
                records.INC_RECORD = ""  # warcio writes a warning to stderr per malformed record; the row says it
                shared_member = False  # a gzip member held several records: they were read apart
                for record in records:
                    if records.offset >= limit:
                        if not members:
                            return  # this record starts in the next range
                        here = fh.tell()
                        starts = _starts_record(fh, records.offset, known)
                        fh.seek(here)
                        if starts:
                            return  # the next range starts there
                        # else a damaged record the next range cannot find: read (and report) it here
                    if record.rec_type in ("response", "resource"):  # warcinfo, request, metadata: not documents
                        body = _body(record, settings)
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
                        position = yield from _rest_of_member(fh, member, limit, new, settings, known)
                        shared_member = True
                        break
                if shared_member:
                    if position is None:
                        return
                    after = position
                    continue
                # warcio stopped before the end of the file: what follows is damage, reported by this range when
                # it starts inside it, or when no other range can start there
                if members and after < size and (after < limit or not _starts_record(fh, after, known)):
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
                if members and offset > position and _starts_record(fh, offset, known):
                    position = offset  # a sound member that failed in the middle of a stream: read it afresh,
                    continue           # as a range starting there would
                if offset >= limit and (not members or _starts_record(fh, offset, known)):
                    return  # the next range starts there, and reads (and reports) it
                # a damaged record just past this range: the next range cannot tell it from noise, so it is
                # reported here, as reading the whole file would
                position = _next_record(fh, offset + 1, limit, members, known)
                lost = "rest of file lost" if position is None else f"bytes {offset}-{position} skipped"
                yield reject(new(f"offset:{offset}+"), reason, f"{brief(exc)}; {lost}")


def _rest_of_member(fh: Any, offset: int, limit: float, new: Any, settings: ExtractSettings,
                    known: str | None) -> Iterator[Row]:
    """Rows for the second and later records of the gzip member at `offset` (a writer put several records in
    one member), located `offset:<member>#<k>`; returns where the next record starts (None: no more in range)."""
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
            return _next_record(fh, offset + 1, limit, True, known)
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
            yield _warc_row(record, f"offset:{offset}#{k}", _body(record, settings), new, settings)
    except Exception as exc:  # noqa: BLE001  (a damaged record inside the member: the rest of the member)
        yield reject(new(f"offset:{offset}#{k + 1}+"), "read:corrupt_warc", f"{brief(exc)}; rest of gzip member lost")
    fh.seek(end)
    return end


def _gzip_magic(path: str) -> bool:
    with storage.open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _starts_record(fh: Any, offset: int, known: str | None) -> bool:
    try:
        return gzip_record_at(fh, offset, file=known)
    except (*GZIP_ERRORS, OSError, ValueError):
        return False


def _next_record(fh: Any, start: int, limit: float, members: bool, known: str | None) -> int | None:
    """warc_start, where a stream that cannot even be searched (a ".gz" that is not gzip) has no next record."""
    try:
        return warc_start(fh, start, limit, members, known)
    except (*GZIP_ERRORS, OSError, ValueError):
        return None
