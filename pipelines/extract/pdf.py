"""PDF extraction: the text layer where a page has a usable one (PDFium), OCR where it has none.

One document per PDF, pages joined in order with a blank line. `metadata.pages` gives, for every page, its
character span in `text`, how it was read (`text_layer` or `ocr`, with the engine and its version) and the OCR
mean confidence. Runs inside a Sandbox: a PDF past `extract.pdf.timeout_s` is `extract:timeout`.
"""
from __future__ import annotations

import io
import re
import unicodedata
from importlib.metadata import version
from typing import Any, Callable

from pipelines.config.extract import PdfSettings
from pipelines.extract.ocr import OcrEngine, get_engine

# Hebrew, Arabic, Syriac, Thaana, NKo... and the Arabic presentation forms; with combining marks in between
_RTL = "\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff"
_RTL_RUN = re.compile(f"[{_RTL}](?:[{_RTL}\\s]*[{_RTL}])?")


def pdfium_version() -> str:
    return f"pypdfium2 {version('pypdfium2')}"


def restore_rtl(text: str) -> str:
    """Reverse runs of right-to-left script, which PDF text layers hold in visual (drawing) order."""
    return "\n".join(_RTL_RUN.sub(lambda m: m.group(0)[::-1], line) for line in text.split("\n"))


def clean_layer(text: str, fix_rtl: bool) -> str:
    # PDFium marks a hyphen at a line break as U+FFFE and uses U+0002 for some soft hyphens: join the word
    text = text.replace("\ufffe", "").replace("\x02", "").replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip()
    return restore_rtl(text) if fix_rtl else text


def garbage_ratio(text: str) -> float:
    """Share of characters that no reader wants: replacement, private-use, unassigned and control characters."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    bad = sum(1 for c in chars if c == "\ufffd" or unicodedata.category(c) in ("Co", "Cn", "Cc"))
    return bad / len(chars)


def layer_problem(text: str, has_images: bool, settings: PdfSettings) -> str | None:
    """Why a page's text layer is not usable ("few_chars", "garbage"), or None when it is."""
    if len(text.strip()) < settings.min_layer_chars:
        # a page with images and (almost) no text is a scan; a page with neither is blank
        return "few_chars" if has_images else None
    if garbage_ratio(text) > settings.max_garbage_ratio:
        return "garbage"
    return None


def _page_has_images(page: Any) -> bool:
    import pypdfium2 as pdfium

    return any(obj.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE for obj in page.get_objects(max_depth=2))


MAX_RENDER_PIXELS = 60_000_000  # a page declared hundreds of inches wide is rendered smaller, never in full


def _render_png(page: Any, dpi: int) -> bytes:
    width, height = page.get_size()  # in points
    scale = dpi / 72
    if width * height * scale * scale > MAX_RENDER_PIXELS:
        scale = (MAX_RENDER_PIXELS / (width * height)) ** 0.5
    image = page.render(scale=scale).to_pil()
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def pdf_setup(settings: PdfSettings) -> tuple[PdfSettings, OcrEngine, str | None]:
    """Runs once in the sandbox child: load PDFium, find out whether OCR can run."""
    import pypdfium2  # noqa: F401

    engine = get_engine(settings.ocr_engine)
    missing = None if settings.ocr == "never" else engine.missing(tuple(settings.ocr_languages))
    return settings, engine, missing


def extract_pdf(data: bytes, state: tuple[PdfSettings, OcrEngine, str | None],
                report: Callable[[Any], None] = lambda _: None) -> dict[str, Any]:
    """{"text", "metadata", "extractor"} of a PDF, or {"reject": reason, "detail": ...}."""
    import pypdfium2 as pdfium

    settings, engine, ocr_missing = state
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            return {"reject": "extract:encrypted_pdf", "detail": str(exc)}
        return {"reject": "extract:corrupt_pdf", "detail": str(exc)}
    try:
        n_pages = len(doc)
        if n_pages > settings.max_pages:
            return {"reject": "extract:too_many_pages",
                    "detail": f"{n_pages} pages > extract.pdf.max_pages={settings.max_pages}"}
        texts: list[str] = []
        pages: list[dict[str, Any]] = []
        ocr_used = False
        unreadable: list[str] = []
        for i in range(n_pages):
            page = None
            try:
                page = doc[i]  # a page tree that loops, or a /Count that lies, fails here for this page alone
                textpage = page.get_textpage()
                layer = clean_layer(textpage.get_text_range(), settings.fix_rtl)
                textpage.close()
                problem = layer_problem(layer, _page_has_images(page), settings)
                entry: dict[str, Any] = {"page": i + 1}
                if settings.ocr == "always" or (settings.ocr == "auto" and problem):
                    if ocr_missing:
                        return {"reject": "extract:ocr_unavailable",
                                "detail": f"page {i + 1} needs OCR ({problem or 'ocr: always'}): {ocr_missing}"}
                    result = engine.recognize(_render_png(page, settings.dpi), tuple(settings.ocr_languages))
                    text = result.text.strip()
                    entry.update(method="ocr", engine=f"{engine.name} {engine.version()}",
                                 ocr_confidence=result.confidence)
                    if problem:
                        entry["layer_problem"] = problem
                    ocr_used = True
                else:
                    text = layer
                    entry["method"] = "text_layer"
                    if problem:
                        entry["layer_problem"] = problem
            except pdfium.PdfiumError as exc:
                unreadable.append(f"page {i + 1}: {exc}")
                text, entry = "", {"page": i + 1, "method": "unreadable", "error": str(exc)[:200]}
            finally:
                if page is not None:
                    page.close()
            texts.append(text)
            pages.append(entry)
            report({"page": i + 1, "pages": n_pages, "method": entry["method"]})
        if unreadable and len(unreadable) == n_pages:
            return {"reject": "extract:corrupt_pdf", "detail": "no page could be read: " + "; ".join(unreadable[:3])}
        meta = {k.lower(): v for k, v in doc.get_metadata_dict(skip_empty=True).items()
                if k in ("Title", "Author", "Subject", "CreationDate")}
        if unreadable:
            meta["unreadable_pages"] = len(unreadable)
    finally:
        doc.close()

    # join pages with a blank line; record each page's span (empty pages keep an empty span)
    parts: list[str] = []
    offset = 0
    for text, entry in zip(texts, pages):
        if parts and text:
            parts.append("\n\n")
            offset += 2
        entry["start"], entry["end"] = offset, offset + len(text)
        parts.append(text)
        offset += len(text)
    confs = [p["ocr_confidence"] for p in pages if p.get("ocr_confidence") is not None]
    meta.update(pdf_pages=n_pages, pages=pages,
                ocr_pages=sum(1 for p in pages if p["method"] == "ocr"),
                ocr_mean_confidence=round(sum(confs) / len(confs), 2) if confs else None)
    extractor = pdfium_version() + (f" + {engine.name} {engine.version()}" if ocr_used else "")
    return {"text": "".join(parts), "metadata": meta, "extractor": extractor}


def _pdf_job(data: bytes, state: Any, report: Callable[[Any], None]) -> dict[str, Any]:
    return extract_pdf(data, state, report)


class PdfExtractor:
    """PDFium and OCR behind the per-document deadline `extract.pdf.timeout_s`. One per DoFn instance."""

    def __init__(self, settings: PdfSettings, on_page: Callable[[Any], None] | None = None,
                 memory_mb: int | None = None) -> None:
        from pipelines.extract.sandbox import Sandbox

        self.sandbox = Sandbox(pdf_setup, _pdf_job, settings, settings.timeout_s, on_progress=on_page,
                               memory_mb=memory_mb)

    def close(self) -> None:
        self.sandbox.close()

    def __call__(self, data: bytes) -> tuple[str, Any]:
        return self.sandbox(data)
