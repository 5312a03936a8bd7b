"""What every reader shares: opening (gunzipped) files, limits on what is read, rows for whole files and for
records, and short error texts."""
from __future__ import annotations

import gzip
import zlib
from typing import BinaryIO

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.runtime import storage
from pipelines.schema import MAX_METADATA_DEPTH, Row, has_surrogate, nesting, new_doc, reject

GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class TooLarge(Exception):
    pass


class _Gunzip(gzip.GzipFile):
    """A gzip stream that closes the object it reads when it is closed."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_stream(path: str, gunzip: bool | None = None) -> BinaryIO:
    """A binary stream over a file or object, gunzipped when the name ends in .gz (or when `gunzip` says)."""
    if gunzip if gunzip is not None else path.endswith(".gz"):
        if not storage.is_url(path):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return _Gunzip(storage.open(path, "rb"))  # type: ignore[return-value]
    return storage.open(path, "rb")


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
    control = len(head) - len(head.translate(None, _CONTROL))
    return control / len(head) > max_ratio


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))  # control bytes but tab, LF, FF and CR


def brief(exc: BaseException) -> str:
    """An exception as one short printable line (messages may quote the binary bytes at fault)."""
    text = f"{type(exc).__name__}: {exc}"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)[:300]


def first_bad_byte(exc: UnicodeDecodeError) -> str:
    """Where a decoding failed, for a rejection's detail."""
    return f"invalid {exc.encoding} at byte {exc.start}"


def whole_file(source: Source, path: str, uri: str, settings: ExtractSettings) -> tuple[Row, bytes | None]:
    """A one-document file's row and bytes, or its rejected row and None (too large, unreadable, empty, binary)."""
    doc = new_doc(source=source.name, source_uri=uri, locator="file", fmt=source.format)
    try:
        size = storage.getsize(path)
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


def record_to_doc(doc: Row, record: dict, source: Source) -> Row | None:
    """Fill text/url/metadata from a JSONL or Parquet record (a binary text field is decoded as UTF-8): the
    document, its rejected row when the text cannot be read, or None when there is no text field."""
    text = record.get(source.text_field)
    if isinstance(text, bytes):  # a Parquet `binary` column: UTF-8 text stored without its type
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return reject(doc, "read:invalid_utf8", f"{source.text_field!r} (binary): {first_bad_byte(exc)}")
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
