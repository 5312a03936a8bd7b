"""Extraction: HTML to article text with trafilatura, in a child process with a deadline.

trafilatura's `extract()` has no time limit of its own and Beam runs DoFns in threads (no SIGALRM), so each
extractor owns one child process: a page that runs past `extract.timeout_s` gets the child killed and
restarted, and the page becomes `extract:timeout`. A child that dies (out of memory, a crash in lxml) makes
the page `extract:error`; the next page gets a fresh child.
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Any

from .config import ExtractSettings, HtmlSettings
from .schema import reject
from .text import content_hash, words

Row = dict[str, Any]

STARTUP_TIMEOUT_S = 120
METADATA_KEYS = ("title", "author", "date", "sitename", "hostname", "description")


def trafilatura_version() -> str:
    import trafilatura

    return f"trafilatura {trafilatura.__version__}"


def extract_html(html: str, url: str | None, settings: HtmlSettings) -> dict[str, Any]:
    """Article text and page metadata of one page (in-process, no deadline)."""
    import trafilatura

    result = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        as_dict=True,
        deduplicate=False,  # a per-process cache: output would depend on document order (DESIGN.md)
        include_comments=settings.include_comments,
        include_tables=settings.include_tables,
        favor_precision=settings.favor_precision,
        favor_recall=settings.favor_recall,
        fast=settings.fast,
    )
    if not result:
        return {"text": ""}
    out = {"text": result.get("text") or ""}
    for key in METADATA_KEYS:
        if result.get(key):
            out[key] = str(result[key])
    return out


def _child(conn: Any, settings: HtmlSettings) -> None:
    import trafilatura  # noqa: F401  (import before "ready": the deadline covers extraction only)

    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        html, url = job
        try:
            conn.send(("ok", extract_html(html, url, settings)))
        except Exception as exc:  # report any extractor failure as a row, never crash the child
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))


class HtmlExtractor:
    """trafilatura behind a deadline. Not thread-safe: one instance per DoFn instance."""

    def __init__(self, settings: ExtractSettings) -> None:
        self.settings = settings
        self.version = trafilatura_version()
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_child, args=(child, self.settings.html), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(STARTUP_TIMEOUT_S) or parent.recv() != "ready":
            self._kill()
            raise RuntimeError(f"the trafilatura child process did not start within {STARTUP_TIMEOUT_S} s")

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
            self._proc = None

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._proc = None

    def __call__(self, html: str, url: str | None) -> tuple[str, Any]:
        """("ok", result) | ("timeout", seconds) | ("error", message)."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        try:
            self._conn.send((html, url))
            if not self._conn.poll(self.settings.timeout_s):
                self._kill()
                return "timeout", self.settings.timeout_s
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            return "error", f"extractor process died (exit code {code}): {type(exc).__name__}"


def annotate(doc: Row) -> Row:
    """Fill the columns every later stage reads: n_chars, n_words, content_hash."""
    text = doc["text"]
    doc["n_chars"] = len(text)
    doc["n_words"] = len(words(text))
    doc["content_hash"] = content_hash(text)
    return doc


def finish_text(doc: Row) -> Row:
    """Common end of extraction for every format: clean line ends, reject empty text, annotate."""
    text = (doc.get("text") or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    doc["text"] = text
    if not text:
        return reject(doc, "extract:empty", "no text after extraction")
    return annotate(doc)


def extract_doc(doc: Row, extractor: HtmlExtractor | None) -> Row:
    """Extract one document from the reader into text (HTML) or pass its text on (other formats)."""
    html = doc.pop("_html", None)
    if html is None:
        return finish_text(doc)
    assert extractor is not None, "an HTML document needs an HtmlExtractor"
    doc["extractor"] = extractor.version
    status, result = extractor(html, doc.get("url"))
    if status == "timeout":
        return reject(doc, "extract:timeout", f"trafilatura ran past extract.timeout_s={result}")
    if status == "error":
        return reject(doc, "extract:error", result)
    doc["text"] = result.pop("text")
    doc["metadata"].update(result)
    return finish_text(doc)
