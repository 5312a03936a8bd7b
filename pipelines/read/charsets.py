"""Bytes of a web page to text: the byte-order mark, UTF-8, then the charsets the HTTP header and the page
declare, read through the WHATWG label table."""
from __future__ import annotations

import re

from pipelines.read.common import first_bad_byte
from pipelines.schema import Row, reject

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.I)
HTML_TYPES = ("text/html", "application/xhtml+xml")


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
            bad = first_bad_byte(exc) if isinstance(exc, UnicodeDecodeError) else str(exc)
            first_failure = first_failure or f"declared {label.lower()}, but {bad}"
    if known:
        raise Mislabelled(f"{first_failure}, and not UTF-8 either")
    if labels:
        raise LookupError(f"unknown charset {labels[0]!r} (not a WHATWG encoding label), and not UTF-8")
    raise utf8_error


def with_html(doc: Row, data: bytes, http_charset: str | None = None) -> Row:
    """The document with its decoded page under `_html`, or a rejected row saying why it cannot be decoded."""
    try:
        doc["_html"], charset = decode_html(data, http_charset)
    except UnicodeDecodeError as exc:
        return reject(doc, "read:invalid_utf8", f"no charset declared and {first_bad_byte(exc)}")
    except Mislabelled as exc:
        return reject(doc, "read:mislabelled_charset", str(exc))
    except LookupError as exc:
        return reject(doc, "read:unknown_charset", str(exc))
    doc["metadata"]["bytes"] = len(data)
    doc["metadata"]["charset"] = charset
    return doc
