"""Adversarial inputs, generated on the spot: records that once ended a whole job, pages whose charset rules
are subtle, files that lose good rows, truncated records, symlink traps."""
from __future__ import annotations

import gzip
import io
import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ARTICLE = ("The river town kept its old stone bridge for three hundred years, and every spring the water rose "
           "to the second arch. People who lived by the bank learned to read the colour of the current, and the "
           "children were taught to swim before they could write. ")


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}</head><body><article><p>{body}</p><p>{ARTICLE * 3}</p></article></body></html>"


def warc_record(url: str | None, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    """One gzipped WARC response record; `url` None leaves WARC-Target-URI out."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    http = StatusAndHeaders("200 OK", headers or [("Content-Type", "text/html")], protocol="HTTP/1.1")
    record = writer.create_warc_record(url or "https://placeholder.example/", "response", payload=io.BytesIO(body),
                                       http_headers=http,
                                       warc_headers_dict={"WARC-Date": "2026-11-01T00:00:00Z",
                                                          "WARC-Record-ID": f"<urn:uuid:{len(body):08d}-0000-0000-0000-000000000000>"})
    if url is None:
        record.rec_headers.remove_header("WARC-Target-URI")
    writer.write_record(record)
    return buf.getvalue()


def build(base: Path) -> dict[str, int]:
    """Write the corpus under `base`; returns the number of records each source folder holds."""
    counts = {}
    html = base / "html"
    html.mkdir(parents=True)
    cafe = "Le café de la crème brûlée"
    pages = {
        # a Python-only codec named as the charset: not a WHATWG label, and the bytes are UTF-8
        "python-codec.html": page(cafe, '<meta charset="unicode_escape">').encode("utf-8"),
        # the <meta> inside a comment does not count; the real one names windows-1251
        "meta-in-comment.html": page("Привет, мир", '<!-- <meta charset="utf-8"> --><meta charset="windows-1251">')
        .encode("cp1251"),
        # UTF-16 with a byte-order mark is text
        "utf16-bom.html": "\ufeff".encode("utf-16-le") + page(cafe).encode("utf-16-le"),
        # <meta charset=utf-16> on an ASCII page means UTF-8
        "meta-utf16-ascii.html": page("Plain words only", '<meta charset="utf-16">').encode("ascii"),
        # a label Python does not know but WHATWG maps (x-user-defined -> windows-1252)
        "latin1-label.html": page(cafe, '<meta charset="latin1">').encode("cp1252"),
    }
    for name, data in pages.items():
        (html / name).write_bytes(data)
    counts["html"] = len(pages)

    warc = base / "warc"
    warc.mkdir()
    good = page("A record whose header is fine.").encode()
    records = [
        warc_record("https://a.example/good", good),
        warc_record(None, page("A record without WARC-Target-URI.").encode()),
        # the HTTP header names utf-8, the bytes are windows-1251 and the page's <meta> says so
        warc_record("https://a.example/http-wrong", page("Привет, мир", '<meta charset="windows-1251">').encode("cp1251"),
                    [("Content-Type", "text/html; charset=utf-8")]),
        warc_record("https://a.example/python-codec", page(cafe).encode(), [("Content-Type", "text/html; charset=rot13")]),
    ]
    (warc / "records.warc.gz").write_bytes(b"".join(records))
    # a record whose Content-Length runs past the end of the file: the file stops half-way through its body
    cut = warc_record("https://a.example/cut", page("Cut in half. " * 50).encode())
    (warc / "truncated.warc").write_bytes(gzip.decompress(cut)[:-400])
    counts["warc"] = len(records) + 1

    jsonl = base / "jsonl"
    jsonl.mkdir()
    lines = [
        json.dumps({"text": "first line of a file that starts with a byte-order mark " + ARTICLE}).encode(),
        b'{"text": "a big number follows", "n": ' + b"9" * 5000 + b"}",
        b'{"text": "a lone surrogate \\ud800 in the text ' + ARTICLE.encode() + b'"}',
        b'{"text": "a lone surrogate in metadata ' + ARTICLE.encode() + b'", "note": "\\udfff"}',
        b'{"text": "NaN and Infinity in metadata ' + ARTICLE.encode() + b'", "a": NaN, "b": Infinity, "c": [-Infinity]}',
        json.dumps({"text": "a good last line " + ARTICLE}).encode(),
    ]
    (jsonl / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    counts["jsonl"] = len(lines)

    parquet = base / "parquet"
    parquet.mkdir()
    texts = [f"row {i}: {ARTICLE}".encode() for i in range(3000)]
    texts[1500] = b"row 1500: caf\xe9 is not UTF-8 " + ARTICLE.encode()
    table = pa.table({"text": pa.array(texts, pa.binary()), "n": pa.array(range(3000))})
    pq.write_table(_as_string_column(table), parquet / "one-bad-row.parquet", row_group_size=1000)
    counts["parquet"] = len(texts)
    return counts


def _as_string_column(table: pa.Table) -> pa.Table:
    """The binary `text` column relabelled as string without validation: a writer that skipped the UTF-8 check."""
    text = table.column("text").combine_chunks()
    relabelled = pa.StringArray.from_buffers(len(text), text.buffers()[1], text.buffers()[2], text.buffers()[0])
    return pa.table({"text": relabelled, "n": table.column("n")})


def symlink_traps(base: Path, outside: Path) -> None:
    """Under base/links: one real page, a loop back to the folder, a second loop, a link to a file outside the
    tree and a link into /proc."""
    links = base / "links"
    (links / "sub").mkdir(parents=True)
    (links / "sub" / "real.html").write_text(page("The only real page in this folder."))
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.html").write_text(page("A page outside the input tree."))
    os.symlink(links, links / "sub" / "loop")
    os.symlink(links / "sub", links / "sub" / "loop2")
    os.symlink(outside / "secret.html", links / "outside.html")
    os.symlink("/proc/self/environ", links / "environ.html")


def nested_warc(path: Path, pages: int = 6) -> int:
    """A member-per-record WARC.gz in which one record's payload is itself a small WARC.gz (stored by deflate
    as it is, so its members sit verbatim inside the outer one); returns the number of outer records."""
    noise = random.Random(5)
    # the inner records hold incompressible bytes, so the outer member stores the inner file as it is
    inner = b"".join(warc_record(f"https://inner.example/{i}", page(f"Inner page {i}.").encode()
                                 + b"<!-- " + noise.randbytes(100_000) + b" -->",
                                 [("Content-Type", "text/html")]) for i in range(3))
    records = [warc_record(f"https://outer.example/{i}", page(f"Outer page {i}. " + "x" * (i * 997)).encode())
               for i in range(pages)]
    records.insert(pages // 2, warc_record("https://outer.example/archive.warc.gz", inner,
                                           [("Content-Type", "application/warc")]))
    path.write_bytes(b"".join(records))
    return len(records)


def looping_pdf() -> bytes:
    """A PDF whose page tree lists itself as a kid and whose /Count says 3: one page can be read."""
    content = b"BT /F1 24 Tf 72 700 Td (A readable page of the tree) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 3 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out
