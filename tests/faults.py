"""A corpus of bad input of every kind, generated on the spot (a few seconds, about 25 MB on disk)."""
from __future__ import annotations

import gzip
import io
import json
import random
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.read.warcpack import write_warc


def gzip_bomb(chunk: bytes, total: int) -> bytes:
    """About `total` bytes of repeated `chunk` once inflated: one small gzip member, repeated (a gzip file may
    hold many members, read back to back)."""
    block = chunk * ((1 << 20) // len(chunk))
    return gzip.compress(block, 9) * (total // len(block))


def many_pages_pdf(pages: int) -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(612, 792)
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def image_bomb_pdf(side: int) -> bytes:
    """One page holding a `side` x `side` grey image: side**2 bytes once decoded, a few MB stored."""
    z = zlib.compressobj(6)
    rows = b"\x00" * (side * 64)
    stream = b"".join([z.compress(rows) for _ in range(side // 64)] + [z.flush()])
    content = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                 b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> >> "
                 b"/Contents 4 0 R >>",
                 b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                 b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
                 b"/Filter /FlateDecode /Length %d >>\nstream\n" % (side, side, len(stream)) + stream + b"\nendstream"])


def corrupt_middle_member(warc_gz: bytes) -> tuple[bytes, int]:
    """Overwrite the compressed body of the middle gzip member (one WARC record) with random bytes."""
    starts = []
    i = warc_gz.find(b"\x1f\x8b\x08")
    while i >= 0:
        starts.append(i)
        i = warc_gz.find(b"\x1f\x8b\x08", i + 1)
    middle = starts[len(starts) // 2]
    end = starts[len(starts) // 2 + 1]
    noise = random.Random(7).randbytes(end - middle - 40)
    return warc_gz[: middle + 20] + noise + warc_gz[middle + 20 + len(noise):], len(starts)


def content_bomb_pdf(total: int) -> bytes:
    """One page whose content stream is a line of text and then `total` bytes of blanks once inflated."""
    z = zlib.compressobj(6)
    blanks = b" " * (1 << 20)
    stream = b"".join([z.compress(b"BT /F1 12 Tf 72 712 Td (hello) Tj ET\n")]
                      + [z.compress(blanks) for _ in range(total >> 20)] + [z.flush()])
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                 b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 "
                 b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
                 b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"])


def _pdf(objects: list[bytes]) -> bytes:
    body = io.BytesIO()
    body.write(b"%PDF-1.7\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(body.tell())
        body.write(b"%d 0 obj\n" % i + obj + b"\nendobj\n")
    xref = body.tell()
    n = len(objects) + 1
    body.write(b"xref\n0 %d\n0000000000 65535 f \n" % n + b"".join(b"%010d 00000 n \n" % o for o in offsets))
    body.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n, xref))
    return body.getvalue()


def build(base: Path, pages: list[bytes], pdf_dir: Path) -> dict[str, int]:
    """Write the fault corpus under `base` (`pages`: at least 7 real HTML pages); returns how many records each
    source holds."""
    page = pages[0]
    html = base / "html"
    html.mkdir(parents=True)
    (html / "good.html").write_bytes(page)
    (html / "bomb.html.gz").write_bytes(gzip_bomb(b"<p>bomb</p> ", 1 << 30))  # 1 GiB once inflated
    (html / "corrupt.html.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + random.Random(1).randbytes(5000))
    (html / "truncated.html.gz").write_bytes(gzip.compress(page)[:3000])
    (html / "binary.html").write_bytes(random.Random(2).randbytes(100_000))
    (html / "huge.html").write_bytes(b"<html><body>" + b"<p>a big page of words</p>\n" * 2_000_000 + b"</body></html>")
    (html / "deep.html").write_bytes(b"<html><body>" + b"<div>" * 100_000 + b"deep text" + b"</div>" * 100_000
                                     + b"</body></html>")
    (html / "invalid-utf8.html").write_bytes(b"<html><body><p>caf\xe9 \xff\xfe broken</p></body></html>")
    (html / "mislabelled.html").write_bytes(b'<html><head><meta charset="utf-8"></head><body><p>'
                                            + "caf\xe9 cr\xe8me".encode("latin-1") + b"</p></body></html>")
    (html / "external-entity.html").write_bytes(
        b'<?xml version="1.0"?>\n<!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<html><body><article>'
        b"<p>An entity that names a local file must never be read: &xxe; and this sentence goes on with enough "
        b"words to make a short article that the extractor keeps.</p></article></body></html>")
    (html / "declared-ascii.html").write_bytes(
        b'<html><head><meta charset="us-ascii"></head><body><article><p>' + ("Le caf\u00e9 de la cr\u00e8me "
        "br\u00fbl\u00e9e est tr\u00e8s bon, et la soir\u00e9e fut longue et douce pour tout le monde. " * 4).encode()
        + b"</p></article></body></html>")
    (html / "unknown-charset.html").write_bytes(b'<html><head><meta charset="x-no-such"></head><body>x</body></html>')
    jsonl = base / "jsonl"
    jsonl.mkdir()
    lines = [json.dumps({"text": "a good record with words enough to pass the filters that run here"}).encode(),
             b"", b"{not json", b"[" * 100_000 + b"]" * 100_000, json.dumps({"body": "no text"}).encode(),
             b'{"text": "bad \xff utf-8"}']
    (jsonl / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (jsonl / "bomb.jsonl.gz").write_bytes(gzip_bomb(b" ", 300 << 20))  # 300 MiB with no line end
    (jsonl / "long-line.jsonl.gz").write_bytes(gzip_bomb(b"x", 50 << 20) + gzip.compress(b"\n{\"text\": \"after\"}\n"))
    warc = base / "warc"
    warc.mkdir()
    write_warc([(f"https://example.org/{i}", p) for i, p in enumerate(pages[:7])], str(warc / "seven.warc.gz"))
    broken, members = corrupt_middle_member((warc / "seven.warc.gz").read_bytes())
    (warc / "seven.warc.gz").write_bytes(broken)
    parquet = base / "parquet"
    parquet.mkdir()
    pq.write_table(pa.table({"body": ["no text column"]}), parquet / "notext.parquet")
    pdf = base / "pdf"
    pdf.mkdir()
    for name in ("libreoffice-writer-password.pdf", "invalid.pdf", "minimal-document.pdf"):
        (pdf / name).write_bytes((pdf_dir / name).read_bytes())
    (pdf / "pages-5000.pdf").write_bytes(many_pages_pdf(5000))
    (pdf / "image-bomb.pdf").write_bytes(image_bomb_pdf(40_000))  # 1.6 GB of pixels once decoded
    (pdf / "content-bomb.pdf").write_bytes(content_bomb_pdf(2 << 30))  # a 2 GiB page description
    return {"html": 12, "jsonl": len(lines) + 3, "warc": members, "parquet": 1, "pdf": 6}


def session_rss(sid: int) -> int:
    """Resident bytes of every process in session `sid` together (Linux /proc)."""
    import os

    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            if int(stat.rsplit(b")", 1)[1].split()[3]) != sid:  # field 6, the session id
                continue
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total


def run_measured(command: list[str], cwd: str, timeout: float) -> tuple[int, int, str]:
    """Run `command` in a new session; (exit code, peak resident bytes of all its processes together, stderr)."""
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            peak = max(peak, session_rss(proc.pid))
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.seek(0)
        return proc.returncode, peak, err.read().decode(errors="replace")
