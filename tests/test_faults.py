"""The fault corpus: bad input of every kind. The job completes, memory stays bounded, and every record ends as
a kept row or a rejected row with a specific reason."""
from __future__ import annotations

import gzip
import json
import sys

import pytest
import yaml

import faults
from conftest import DATA, ROOT, read_rows

MEMORY_MB = 1024  # the extractor children's cap in this run
PEAK_LIMIT = 2_000_000_000  # every process of the run together (the driver, its extractor children, Tesseract)


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    pages = [gzip.open(p).read() for p in sorted((DATA / "web").glob("*.html.gz"))[:7]]
    counts = faults.build(base / "in", pages, DATA / "pdf")
    config = {
        "sources": [{"name": name, "format": name, "paths": [f"in/{name}/*"]}
                    for name in ("html", "jsonl", "warc", "parquet", "pdf")],
        "output": "out",
        "filters": {"enabled": False},
        "dedup": {"enabled": False},
        "extract": {"max_memory_mb": MEMORY_MB, "max_decompressed_bytes": 200_000_000},
    }
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    code, peak, stderr = faults.run_measured(
        [sys.executable, "-m", "pipelines.cli", "curate", str(base / "curate.yaml"), "--workers", "1", "--quiet"],
        cwd=str(ROOT), timeout=600)
    print(f"fault corpus: exit {code}, peak resident memory of the whole run {peak / 1e6:.0f} MB")
    assert code == 0, stderr[-3000:]
    stats = json.loads((base / "out" / "stats.json").read_text())
    rows, texts, metadata = {}, {}, {}
    for kind in ("kept", "rejected"):
        for r in read_rows(base / "out", kind):
            key = r["source_uri"].split("/", 1)[1] + "@" + r["locator"]
            rows[key] = r.get("reason") or "kept"
            texts[key] = r["text"] or ""
            metadata[key] = json.loads(r["metadata"])
    return {"counts": counts, "peak": peak, "stats": stats, "rows": rows, "texts": texts, "metadata": metadata}


def test_the_job_completes_with_bounded_memory(fault_run):
    assert 0 < fault_run["peak"] < PEAK_LIMIT


def test_every_record_is_accounted_for(fault_run):
    stats = fault_run["stats"]
    for name, s in stats["sources"].items():
        assert s["read"] >= fault_run["counts"][name], name
        assert s["kept"] + s["rejected"] == s["read"], name
    assert len(fault_run["rows"]) == stats["totals"]["read"]  # one row per record, no id twice


def test_bad_html_files(fault_run):
    rows = fault_run["rows"]
    assert rows["html/good.html@file"] == "kept"
    assert rows["html/bomb.html.gz@file"] == "extract:too_large"  # inflation stops at extract.max_doc_bytes
    assert rows["html/corrupt.html.gz@file"] == "read:corrupt_gzip"
    assert rows["html/truncated.html.gz@file"] == "read:corrupt_gzip"
    assert rows["html/binary.html@file"] == "read:binary"
    assert rows["html/huge.html@file"] == "extract:too_large"  # 54 MB > the 20 MB default
    assert rows["html/deep.html@file"] == "extract:empty"  # the parser stops descending; no article is left
    assert rows["html/invalid-utf8.html@file"] == "read:invalid_utf8"
    assert rows["html/mislabelled.html@file"] == "read:mislabelled_charset"
    # declared ASCII, written in UTF-8: read as UTF-8, and the row says so
    assert rows["html/declared-ascii.html@file"] == "kept"
    assert "crème brûlée" in fault_run["texts"]["html/declared-ascii.html@file"]
    assert fault_run["metadata"]["html/declared-ascii.html@file"]["charset"] == "utf-8 (declared us-ascii)"
    # an unknown label is no charset (WHATWG): the bytes are UTF-8, and the row says what was declared
    assert rows["html/unknown-charset.html@file"] == "kept"
    assert fault_run["metadata"]["html/unknown-charset.html@file"]["charset"] == "utf-8 (declared x-no-such)"


def test_external_entities_are_never_resolved(fault_run):
    assert fault_run["rows"]["html/external-entity.html@file"] == "kept"
    text = fault_run["texts"]["html/external-entity.html@file"]
    assert "must never be read" in text and "root:" not in text


def test_bad_jsonl_lines(fault_run):
    rows = {k: v for k, v in fault_run["rows"].items() if k.startswith("jsonl/mixed.jsonl@")}
    assert sorted(rows.values()) == ["kept", "read:empty", "read:invalid_json", "read:invalid_json",
                                     "read:invalid_utf8", "read:no_text"]
    # a gzip bomb stops at extract.max_decompressed_bytes; a 50 MiB line is skipped in pieces, never held whole
    assert fault_run["rows"]["jsonl/bomb.jsonl.gz@offset:0+"] == "read:too_large"
    assert fault_run["rows"]["jsonl/long-line.jsonl.gz@offset:0"] == "extract:too_large"
    assert fault_run["rows"][f"jsonl/long-line.jsonl.gz@offset:{(50 << 20) + 1}"] == "kept"


def test_an_invalid_warc_record_among_good_ones(fault_run):
    rows = {k: v for k, v in fault_run["rows"].items() if k.startswith("warc/")}
    assert list(rows.values()).count("read:corrupt_warc") == 1
    assert list(rows.values()).count("kept") == fault_run["counts"]["warc"] - 1  # the records after it too


def test_bad_pdfs_and_parquet(fault_run):
    rows = fault_run["rows"]
    assert rows["parquet/notext.parquet@file"] == "read:no_text_column"
    assert rows["pdf/libreoffice-writer-password.pdf@file"] == "extract:encrypted_pdf"
    assert rows["pdf/invalid.pdf@file"] == "extract:corrupt_pdf"
    assert rows["pdf/pages-5000.pdf@file"] == "extract:too_many_pages"
    assert rows["pdf/minimal-document.pdf@file"] == "kept"
    # the image is rendered at the OCR resolution, never decoded whole; it holds no text
    assert rows["pdf/image-bomb.pdf@file"] == "extract:empty"
    # inflating a 2 GiB page description passes the extractor's memory cap: that PDF fails alone
    assert rows["pdf/content-bomb.pdf@file"] == "extract:error"
