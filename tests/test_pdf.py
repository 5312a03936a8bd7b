"""PDFs: text layer, OCR of scanned pages, bad PDFs accounted for, and mixed HTML + PDF jobs."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import DATA, WEB, curate, read_rows
from pipelines.config.extract import PdfSettings
from pipelines.extract.ocr import Tesseract, parse_tsv
from pipelines.extract.pdf import clean_layer, extract_pdf, garbage_ratio, pdf_setup, restore_rtl

PDF = DATA / "pdf"
TRANSCRIPTIONS = Path(__file__).parent / "data"


def word_recall(reference: str, hypothesis: str) -> float:
    ref = Counter(re.findall(r"\w+", reference.lower()))
    hyp = Counter(re.findall(r"\w+", hypothesis.lower()))
    return sum((ref & hyp).values()) / sum(ref.values())


@pytest.fixture(scope="module")
def pdf_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("pdf")
    return curate(base, {
        "sources": [{"name": "pdf", "format": "pdf", "paths": [str(PDF / "*.pdf")]}],
        "output": "out",
        "filters": {"enabled": False},
        "dedup": {"enabled": False},
    }, workers=2)


def kept_by_file(run) -> dict[str, dict]:
    return {r["source_uri"].rsplit("/", 1)[1]: r for r in read_rows(run.output, "kept")}


def test_every_pdf_is_one_row_with_its_reason(pdf_run):
    s = pdf_run.stats["sources"]["pdf"]
    assert s["read"] == 13
    assert s["rejected_by_reason"] == {"extract:encrypted_pdf": 1, "extract:corrupt_pdf": 1}
    rejected = {r["source_uri"].rsplit("/", 1)[1]: r["reason"] for r in read_rows(pdf_run.output, "rejected")}
    assert rejected == {"libreoffice-writer-password.pdf": "extract:encrypted_pdf", "invalid.pdf": "extract:corrupt_pdf"}


def test_text_layer_pdfs(pdf_run):
    kept = kept_by_file(pdf_run)
    four = kept["pdflatex-4-pages.pdf"]
    assert four["text"].startswith("Hello, here is some text without a meaning. This text should show what a printed text")
    meta = json.loads(four["metadata"])
    assert meta["pdf_pages"] == 4 and [p["method"] for p in meta["pages"]] == ["text_layer"] * 4
    assert four["extractor"].startswith("pypdfium2 ") and "tesseract" not in four["extractor"]
    google = kept["google-doc-document.pdf"]["text"]
    zen = ["Beautiful is better than ugly.", "Explicit is better than implicit.", "Simple is better than complex.",
           "Readability counts.", "Errors should never pass silently."]
    positions = [google.index(line) for line in zen]
    assert positions == sorted(positions)


def test_page_spans_cover_the_text(pdf_run):
    row = kept_by_file(pdf_run)["pdflatex-4-pages.pdf"]
    pages = json.loads(row["metadata"])["pages"]
    text = row["text"]
    assert pages[0]["start"] == 0 and pages[-1]["end"] == len(text)
    for prev, nxt in zip(pages, pages[1:]):
        assert text[prev["end"]:nxt["start"]] == "\n\n"
    assert "Hello, here is some text" in text[pages[2]["start"]:pages[2]["end"]]


def test_two_columns_come_out_column_by_column(pdf_run):
    text = kept_by_file(pdf_run)["multicolumn.pdf"]["text"]
    # end of the left column, then the top of the right column
    assert text.index("Vivamus viverra fermentum felis. Donec nonummy") < text.index("pellentesque ante. Phasellus adipiscing semper elit.")
    assert text.index("Nam dui ligula, fringilla a, euismod sodales") < text.index("Quisque ullamcorper placerat ipsum. Cras nibh.")
    # no line mixes the two columns, and hyphenated words are joined
    for line in text.split("\n"):
        assert not ("Curabitur dictum gravida" in line and "Nunc eleifend" in line)
    assert "adipiscing elit" in text and "\ufffe" not in text


@pytest.mark.parametrize("name, transcription", [("c02-22.pdf", "c02-22"), ("skew.pdf", "skew")])
def test_scanned_pages_are_ocred(pdf_run, name, transcription):
    row = kept_by_file(pdf_run)[name]
    meta = json.loads(row["metadata"])
    assert [p["method"] for p in meta["pages"]] == ["ocr"]
    assert meta["pages"][0]["engine"].startswith("tesseract ") and meta["ocr_mean_confidence"] > 50
    assert "+ tesseract" in row["extractor"]
    reference = (TRANSCRIPTIONS / f"{transcription}.transcription.txt").read_text()
    recall = word_recall(reference, row["text"])
    print(f"{name}: word recall {recall:.3f} against the transcription")
    assert recall >= 0.8


def test_existing_ocr_layer_is_used_and_arabic_kept(pdf_run):
    kept = kept_by_file(pdf_run)
    graph = json.loads(kept["graph_ocred.pdf"]["metadata"])
    assert graph["pages"][0]["method"] == "text_layer" and graph["title"] == "Example graph"
    assert "Percentage" in kept["graph_ocred.pdf"]["text"]
    arabic = kept["habibi.pdf"]["text"]
    assert "habibi" in arabic and "حَبيبي" in arabic  # in reading order, not the layer's visual order


def test_four_scanned_pages_in_order(pdf_run):
    row = kept_by_file(pdf_run)["cardinal.pdf"]
    meta = json.loads(row["metadata"])
    assert meta["pdf_pages"] == 4 and meta["ocr_pages"] == 4
    assert all(p["ocr_confidence"] is not None for p in meta["pages"])
    assert row["text"].startswith("The LinnSequencer")


def test_limits_and_timeout(tmp_path):
    for name in ("pdflatex-4-pages.pdf", "minimal-document.pdf", "cardinal.pdf"):
        shutil.copy(PDF / name, tmp_path / name)
    result = curate(tmp_path, {
        "sources": [{"name": "pdf", "format": "pdf", "paths": ["*.pdf"]}],
        "output": "out",
        "extract": {"pdf": {"max_pages": 3, "max_bytes": 50_000, "timeout_s": 1.0}},
        "filters": {"enabled": False},
    })
    got = {r["source_uri"]: r["reason"] for r in read_rows(result.output, "rejected")}
    assert got == {"pdflatex-4-pages.pdf": "extract:too_many_pages", "cardinal.pdf": "extract:too_large"}
    assert result.stats["sources"]["pdf"]["kept"] == 1
    # the OCR of cardinal's four pages takes seconds: past a 1 s deadline it is a timeout
    result = curate(tmp_path / "t", {
        "sources": [{"name": "pdf", "format": "pdf", "paths": [str(tmp_path / "cardinal.pdf")]}],
        "output": "out",
        "extract": {"pdf": {"timeout_s": 1.0}},
    })
    assert result.stats["sources"]["pdf"]["rejected_by_reason"] == {"extract:timeout": 1}


def test_ocr_unavailable_is_a_loud_rejection(tmp_path, monkeypatch):
    state = pdf_setup(PdfSettings())
    missing = Tesseract("/nonexistent/tesseract").missing(("eng",))
    assert "not installed" in missing
    result = extract_pdf((PDF / "c02-22.pdf").read_bytes(), (state[0], state[1], missing))
    assert result["reject"] == "extract:ocr_unavailable" and "page 1 needs OCR" in result["detail"]
    # a text-layer PDF needs no OCR and is fine without an engine
    ok = extract_pdf((PDF / "minimal-document.pdf").read_bytes(), (state[0], state[1], missing))
    assert "reject" not in ok and ok["text"]
    # in a job: the engine missing from PATH, the scan is rejected, the stats say so
    shutil.copy(PDF / "c02-22.pdf", tmp_path / "scan.pdf")
    monkeypatch.setenv("PATH", str(tmp_path))
    result = curate(tmp_path, {"sources": [{"name": "scans", "format": "pdf", "paths": ["*.pdf"]}], "output": "out"})
    assert result.stats["sources"]["scans"]["rejected_by_reason"] == {"extract:ocr_unavailable": 1}
    assert any("OCR" in w for w in result.stats["warnings"])


def test_ocr_never_and_always(tmp_path):
    never = extract_pdf((PDF / "c02-22.pdf").read_bytes(), pdf_setup(PdfSettings(ocr="never")))
    assert never["text"] == "" and never["metadata"]["pages"][0]["layer_problem"] == "few_chars"
    always = extract_pdf((PDF / "minimal-document.pdf").read_bytes(), pdf_setup(PdfSettings(ocr="always", dpi=150)))
    layer = extract_pdf((PDF / "minimal-document.pdf").read_bytes(), pdf_setup(PdfSettings(ocr="never")))
    assert always["metadata"]["pages"][0]["method"] == "ocr"
    assert word_recall(layer["text"], always["text"]) >= 0.8


def test_layer_helpers():
    assert clean_layer("adip\ufffeiscing\r\nnext  \r\n", fix_rtl=False) == "adipiscing\nnext"
    assert restore_rtl("abc يبيبَح") == "abc حَبيبي"
    assert garbage_ratio("\ufffd\ufffd ok") == 0.5 and garbage_ratio("plain text") == 0.0
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
           "5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t90\tHello\n5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t80\tworld\n"
           "5\t1\t2\t1\t1\t1\t0\t0\t1\t1\t70\tNext\n")
    result = parse_tsv(tsv)
    assert result.text == "Hello world\n\nNext" and result.confidence == 80.0


def test_mixed_html_and_pdf_job(tmp_path, truth):
    (tmp_path / "web").mkdir()
    (tmp_path / "pdf").mkdir()
    for n in sorted(truth)[:5]:
        shutil.copy(WEB / f"{n}.html.gz", tmp_path / "web")
    for name in ("multicolumn.pdf", "c02-22.pdf", "invalid.pdf"):
        shutil.copy(PDF / name, tmp_path / "pdf")
    result = curate(tmp_path, {
        "sources": [{"name": "web", "format": "html", "paths": ["web/*.html.gz"]},
                    {"name": "pdfs", "format": "pdf", "paths": ["pdf/*.pdf"]}],
        "output": "out",
        "filters": {"enabled": False},
    }, workers=2)
    web, pdfs = result.stats["sources"]["web"], result.stats["sources"]["pdfs"]
    assert (web["read"], web["kept"]) == (5, 5)
    assert (pdfs["read"], pdfs["kept"], pdfs["rejected_by_reason"]) == (3, 2, {"extract:corrupt_pdf": 1})
    formats = Counter(r["format"] for r in read_rows(result.output, "kept"))
    assert formats == {"html": 5, "pdf": 2}
