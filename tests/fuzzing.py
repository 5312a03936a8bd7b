"""Malformed inputs from a seed: the same seed gives the same file. Used by tests/test_fuzz.py (hypothesis picks
the seeds) and benchmarks/fuzz_readers.py (a longer budget)."""
from __future__ import annotations

import gzip
import io
import json
import math
import random
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from adversarial import page, warc_record

FORMATS = ("jsonl", "warc", "html", "parquet")
LABELS = ["utf-8", "utf-16", "utf-16be", "latin1", "windows-1251", "shift_jis", "gbk", "koi8-r", "x-user-defined",
          "unicode_escape", "rot13", "base64", "x-no-such", "", "UTF8", " utf-8 ", "iso-2022-jp", "big5"]
WORDS = ["river", "café", "Привет", "мир", "東京", "😀", "\u200b", "\ufeff", "a\u0300", "\x00", "\x1b", "<b>", "&amp;",
         "\\ud800", "\"", "\n", "\r\n", "\t"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < 0.3 else "word" * rng.randint(1, 3) for _ in range(n))


def _mutate(rng: random.Random, data: bytes, rounds: int) -> bytes:
    """Truncate, flip, insert, duplicate or delete byte runs."""
    buf = bytearray(data)
    for _ in range(rounds):
        if not buf:
            break
        at = rng.randrange(len(buf))
        op = rng.randrange(5)
        if op == 0:
            del buf[at:]
        elif op == 1:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 2:
            buf[at:at] = rng.randbytes(rng.randint(1, 64))
        elif op == 3:
            end = min(len(buf), at + rng.randint(1, 200))
            buf[at:at] = buf[at:end]
        else:
            del buf[at:at + rng.randint(1, 200)]
    return bytes(buf)


def jsonl(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.randrange(9)
        if kind == 0:
            lines.append(rng.randbytes(rng.randint(0, 80)))
        elif kind == 1:
            lines.append(b'{"text": "x", "n": ' + b"7" * rng.randint(1, 6000) + b"}")
        elif kind == 2:
            lines.append(b'{"text": "' + _text(rng, 20).encode("utf-8", "surrogatepass") + b'", "v": NaN}')
        elif kind == 3:
            lines.append(b"[" * rng.randint(1, 3000) + b"]" * rng.randint(0, 3000))
        elif kind == 4:
            lines.append(json.dumps({"text": rng.random(), "url": ["a"]}).encode())
        else:
            record = {"text": _text(rng, rng.randint(0, 60)), "url": rng.choice([None, "https://x.example/", 3]),
                      rng.choice(["meta", "\ud800k", "n"]): rng.choice([1e308 * 10, -0.0, "v", None, [1, {"a": 2}]])}
            lines.append(json.dumps(record, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"))
    data = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
    data = _mutate(rng, data, rng.randint(0, 3))
    return gzip.compress(data) if rng.random() < 0.2 else data


def html(rng: random.Random) -> bytes:
    label = rng.choice(LABELS)
    head = rng.choice([f'<meta charset="{label}">', f"<!-- <meta charset={label}> -->",
                       f'<meta http-equiv="Content-Type" content="text/html; charset={label}">', ""])
    body = page(_text(rng, rng.randint(0, 80)), head)
    codec = rng.choice(["utf-8", "utf-16-le", "cp1251", "latin-1", "utf-8"])
    data = body.encode(codec, "replace")
    if codec == "utf-16-le" and rng.random() < 0.7:
        data = b"\xff\xfe" + data
    return _mutate(rng, data, rng.randint(0, 4))


def warc(rng: random.Random) -> bytes:
    records = []
    for i in range(rng.randint(1, 5)):
        headers = [("Content-Type", rng.choice(["text/html", "text/html; charset=" + rng.choice(LABELS),
                                                "application/pdf", ""]))]
        if rng.random() < 0.2:
            headers.append(("Content-Encoding", rng.choice(["br", "gzip", "zstd", "deflate", "x-gzip"])))
        body = page(_text(rng, rng.randint(0, 40))).encode("utf-8", "replace")
        records.append(warc_record(rng.choice([f"https://w.example/{i}", None]), body, headers))
    data = b"".join(records)
    if rng.random() < 0.3:
        data = b"".join(gzip.decompress(r) for r in records)  # an uncompressed WARC
    return _mutate(rng, data, rng.randint(0, 3))


def parquet(rng: random.Random) -> bytes:
    n = rng.randint(0, 50)
    texts = [(_text(rng, rng.randint(0, 20)).encode("utf-8", "surrogatepass") if rng.random() < 0.9
              else rng.randbytes(rng.randint(0, 30))) for _ in range(n)]
    raw = pa.array(texts, pa.binary())
    as_string = pa.StringArray.from_buffers(len(raw), raw.buffers()[1], raw.buffers()[2], raw.buffers()[0])
    columns: dict[str, Any] = {"text": as_string, "n": pa.array([rng.random() for _ in range(n)])}
    if rng.random() < 0.3:
        columns = {"body": as_string}
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, row_group_size=max(1, rng.randint(1, 20)))
    data = buf.getvalue()
    return _mutate(rng, data, rng.randint(0, 2)) if rng.random() < 0.3 else data


MAKERS: dict[str, Callable[[random.Random], bytes]] = {"jsonl": jsonl, "warc": warc, "html": html, "parquet": parquet}
SUFFIX = {"jsonl": ".jsonl", "warc": ".warc.gz", "html": ".html", "parquet": ".parquet"}


def make(fmt: str, seed: int) -> bytes:
    return MAKERS[fmt](random.Random(f"{fmt}:{seed}"))


def check_file(fmt: str, path: str) -> list[dict]:
    """Read one file as refinery does and assert the reader's invariants; returns the rows. Every record is
    one row, rows have unique ids, a rejected row has a `stage:rule` reason and a detail, every field but the
    text is strict JSON in UTF-8, a page's main region can be read, the rows can be written as Parquet, and
    reading the file in byte ranges gives the same rows as reading it whole."""
    import os

    from pipelines.extract import page_region, route
    from pipelines.config.curate import Source
    from pipelines.config.extract import ExtractSettings
    from pipelines.read.readers import read_file
    from pipelines.schema import STAGES, has_surrogate, strict_fields, to_table
    from pipelines.read.splits import splittable

    source = Source(name="fuzz", format=fmt, paths=("x",))
    settings = ExtractSettings()
    rows = [strict_fields(r) for r in read_file(source, path, os.path.basename(path), settings)]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "an id twice"
    kept, rejected = [], []
    for row in rows:
        public = {k: v for k, v in row.items() if not k.startswith("_") and k != "text"}
        json.dumps(public, allow_nan=False).encode("utf-8")
        if "reason" in row:
            stage, _, rule = row["reason"].partition(":")
            assert stage in STAGES and rule and isinstance(row["detail"], str), row["reason"]
            rejected.append({k: v for k, v in row.items() if not k.startswith("_")})
            continue
        if "_html" in row:
            assert not has_surrogate(row["_html"])
            lines = page_region.html_lines(row["_html"])
            region = "\n".join(line.text for line in lines)
            x, texts = route.views(row["_html"], region[:50], lines, route.load())
            assert len(x) == len(route.NAMES) and all(math.isfinite(v) for v in x)
            assert set(texts["filtered"].split("\n")) <= set(region.split("\n")) | {""}
            assert route.route(x, route.load()).view in texts
            row = {**row, "text": row["_html"][:100]}
        assert isinstance(row.get("text"), str) or "_pdf" in row
        assert not has_surrogate(row["text"])
        kept.append({k: v for k, v in row.items() if not k.startswith("_")})
    to_table(kept, rejected=False)
    to_table(rejected, rejected=True)
    size = os.path.getsize(path)
    if size > 3 and splittable(fmt, path):
        step = max(1, size // 3)
        pieces = []
        for start in range(0, size, step):
            pieces += [(r["locator"], r.get("reason"))
                       for r in read_file(source, path, os.path.basename(path), settings, start, min(size, start + step))]
        whole = [(r["locator"], r.get("reason")) for r in rows]
        assert sorted(pieces, key=str) == sorted(whole, key=str), "ranges read other rows than the whole file"
    return rows
