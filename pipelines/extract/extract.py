"""Extraction: HTML to text (trafilatura's article or the page's main region, as the page router chooses:
html.py), in a sandboxed child process with a deadline; PDFs through pdf.py.

A page that runs past `extract.timeout_s` becomes `extract:timeout`; a child that dies (out of memory, a crash
in lxml) makes the page `extract:error`; the next page gets a fresh child. A crawl holds many byte-identical
payloads (a page fetched again, the same page under several URLs): the extractor remembers the outcome of its
last `extract.repeat_memory` pages by a hash of the page (and its URL, when metadata is on, since the metadata
reads the host name and a date from it), and a repeat takes the remembered outcome instead of a second extraction.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Callable

from pipelines.config.extract import ExtractSettings
from pipelines.extract.html import extractor_version, html_job, html_setup
from pipelines.extract.sandbox import Sandbox, prestart
from pipelines.runtime import storage
from pipelines.schema import Row, reject
from pipelines.text import content_hash


MEMORY_CHARS = 32 << 20  # at most this much remembered text per worker, however long its pages


def _size(outcome: tuple[str, Any]) -> int:
    return len(outcome[1].get("text") or "") if isinstance(outcome[1], dict) else 0


def _child_settings(settings: ExtractSettings) -> dict[str, Any]:
    """The HTML settings as the extractor child gets them: a plain dict, the router's file (in a bucket, say) as
    a local copy the child can open."""
    html = settings.html.model_dump()
    if html.get("route_model"):
        html["route_model"] = storage.local_copy(html["route_model"])
    return html


class HtmlExtractor:
    """trafilatura behind a deadline. Not thread-safe: one instance per DoFn instance."""

    def __init__(self, settings: ExtractSettings) -> None:
        html = _child_settings(settings)
        self.version = extractor_version(settings.html, html["route_model"])
        self.sandbox = Sandbox(html_setup, html_job, html, settings.timeout_s, memory_mb=settings.max_memory_mb)
        self.keep, self.with_url = settings.repeat_memory, settings.html.metadata
        self.recent: OrderedDict[bytes, tuple[str, Any]] = OrderedDict()
        self.held = 0  # characters of text remembered
        self.repeats = 0
        self.pending: tuple[str, bytes | None] | None = None  # the page started by `ahead`, and its key

    @staticmethod
    def prestart(settings: ExtractSettings, count: int) -> None:
        """Start the children of `count` extractors of these settings now (sandbox.prestart): HtmlExtractors
        made later in this process take them."""
        prestart(html_setup, html_job, _child_settings(settings), settings.max_memory_mb, count)

    def close(self) -> None:
        self.pending = None  # a page started ahead and never asked for: the child ends with it
        self.sandbox.close()

    def __call__(self, html: str, url: str | None) -> tuple[str, Any]:
        """("ok", {"text": ..., metadata...}) | ("timeout", seconds) | ("error", message); a fresh dict each call."""
        if not self.keep:
            return self._extract(html, url, None)
        key = self._key(html, url)
        if key in self.recent:
            self.recent.move_to_end(key)
            self.repeats += 1
        else:
            self.recent[key] = outcome = self._extract(html, url, key)
            self.held += _size(outcome)
            while len(self.recent) > self.keep or (self.held > MEMORY_CHARS and len(self.recent) > 1):
                self.held -= _size(self.recent.popitem(last=False)[1])
        status, body = self.recent[key]
        return status, dict(body) if isinstance(body, dict) else body

    def ahead(self, html: str, url: str | None) -> None:
        """Start on the page the caller will ask for next, so that the child extracts it while the caller
        finishes the page in hand (its filters and sketches); the call for that page takes the outcome. A
        remembered repeat is not started, and only one page is ahead at a time."""
        if self.pending is not None:
            return
        key = self._key(html, url) if self.keep else None
        if key is not None and key in self.recent:
            return
        self.sandbox.submit((html, url))
        self.pending = (html, key)

    def _extract(self, html: str, url: str | None, key: bytes | None) -> tuple[str, Any]:
        pending, self.pending = self.pending, None
        if pending is not None:
            outcome = self.sandbox.collect()
            if pending[0] is html:
                return outcome
            # started for a page the caller did not ask for after all: its outcome goes unused
        return self.sandbox((html, url))

    def _key(self, html: str, url: str | None) -> bytes:
        if self.pending is not None and self.pending[0] is html and self.pending[1] is not None:
            return self.pending[1]
        h = hashlib.blake2b(html.encode("utf-8", "surrogatepass"), digest_size=16)
        if self.with_url:
            h.update(b"\0" + (url or "").encode("utf-8", "surrogatepass"))
        return h.digest()


def annotate(doc: Row) -> Row:
    """Fill n_chars and content_hash, which every later stage reads. n_words is counted by language ID, which
    every row with a text reaches, in the words of the language it finds (filters.LanguageId)."""
    text = doc["text"]
    doc["n_chars"] = len(text)
    doc["content_hash"] = content_hash(text)
    return doc


def finish_text(doc: Row) -> Row:
    """Common end of extraction for every format: clean line ends, reject empty text, annotate."""
    text = (doc.get("text") or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    doc["text"] = text
    if not text:
        return reject(doc, "extract:empty", "no text after extraction")
    return annotate(doc)


def extract_pdf_doc(doc: Row, extractor: Any) -> Row:
    status, result = extractor(doc.pop("_pdf"))
    if status == "timeout":
        return reject(doc, "extract:timeout", f"PDF extraction ran past extract.pdf.timeout_s={result}")
    if status == "error":
        return reject(doc, "extract:error", result)
    if "reject" in result:
        return reject(doc, result["reject"], result["detail"])
    doc["text"] = result["text"]
    doc["extractor"] = result["extractor"]
    doc["metadata"].update(result["metadata"])
    return finish_text(doc)


def extract_doc(doc: Row, extractor: HtmlExtractor | None, pdf_extractor: Any = None) -> Row:
    """Extract one document from the reader into text (HTML, PDF) or pass its text on (other formats)."""
    if "_pdf" in doc:
        assert pdf_extractor is not None, "a PDF document needs a PdfExtractor"
        return extract_pdf_doc(doc, pdf_extractor)
    html = doc.pop("_html", None)
    if html is None:
        return finish_text(doc)
    assert extractor is not None, "an HTML document needs an HtmlExtractor"
    doc["extractor"] = extractor.version
    status, result = extractor(html, doc.get("url"))
    if status == "timeout":
        return reject(doc, "extract:timeout", f"HTML extraction ran past extract.timeout_s={result}")
    if status == "error":
        return reject(doc, "extract:error", result)
    doc["text"] = result.pop("text")
    doc["metadata"].update(result)
    return finish_text(doc)


class Extract:
    """The extract stage: text from HTML (trafilatura), PDF (text layer, OCR where a page has none) or the
    record's own text. Each extractor starts on its first document; `close` stops them."""

    stage, name = "extract", "extract"

    def __init__(self, settings: ExtractSettings, on_page: Callable[[dict], None] | None = None,
                 on_repeat: Callable[[], None] | None = None) -> None:
        self.settings, self.on_page, self.on_repeat = settings, on_page, on_repeat
        self.html: HtmlExtractor | None = None
        self.pdf: Any = None
        self.upcoming: Row | None = None  # the row the caller will pass next, when it knows it (`ahead`)

    def ahead(self, row: Row | None) -> None:
        """Tell the stage which row comes after the one it is given next: once that one's page is extracted,
        the child starts on this row's page while the caller runs the later stages."""
        self.upcoming = row

    def __call__(self, row: Row) -> Row:
        if "_html" in row and self.html is None:
            self.html = HtmlExtractor(self.settings)
        if "_pdf" in row and self.pdf is None:
            from pipelines.extract.pdf import PdfExtractor

            self.pdf = PdfExtractor(self.settings.pdf, on_page=self.on_page, memory_mb=self.settings.max_memory_mb)
        repeats = self.html.repeats if self.html is not None else 0
        out = extract_doc(row, self.html, self.pdf)
        if self.html is not None and self.html.repeats > repeats and self.on_repeat is not None:
            self.on_repeat()
        upcoming, self.upcoming = self.upcoming, None
        if self.html is not None and upcoming is not None and "_html" in upcoming:
            self.html.ahead(upcoming["_html"], upcoming.get("url"))
        return out

    def close(self) -> None:
        self.upcoming = None
        for extractor in (self.html, self.pdf):
            if extractor is not None:
                extractor.close()
