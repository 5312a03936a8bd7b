"""OCR engines: one pluggable step that turns a page image into text and a mean confidence.

Tesseract (Debian's `tesseract-ocr` and `tesseract-ocr-<lang>`) runs offline. An engine is any object with
`name`, `version()`, `missing(languages)` and `recognize(png_bytes, languages)`; register others in ENGINES
(a GPU OCR model, for example).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol


@dataclass
class OcrResult:
    text: str
    confidence: float | None  # mean word confidence, 0-100; None when no word was found


class OcrEngine(Protocol):
    name: str

    def version(self) -> str: ...

    def missing(self, languages: tuple[str, ...]) -> str | None:
        """None when the engine can run with these languages, else why not."""

    def recognize(self, png: bytes, languages: tuple[str, ...]) -> OcrResult: ...


class Tesseract:
    name = "tesseract"

    def __init__(self, binary: str = "tesseract") -> None:
        self.binary = binary

    @lru_cache(maxsize=1)
    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True)
        first = (out.stdout or out.stderr).splitlines()[0]
        return first.split()[-1]

    @lru_cache(maxsize=8)
    def missing(self, languages: tuple[str, ...]) -> str | None:
        if shutil.which(self.binary) is None:
            return "tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)"
        out = subprocess.run([self.binary, "--list-langs"], capture_output=True, text=True)
        have = {line.strip() for line in out.stdout.splitlines()[1:]}
        lacking = [lang for lang in languages if lang not in have]
        if lacking:
            return f"tesseract has no language data for {', '.join(lacking)} (Debian: tesseract-ocr-<lang>)"
        return None

    def recognize(self, png: bytes, languages: tuple[str, ...]) -> OcrResult:
        # one thread per tesseract: the pipeline already runs one OCR per worker (DESIGN.md: 10-15 s -> 2.5 s)
        env = dict(os.environ, OMP_THREAD_LIMIT="1")
        proc = subprocess.run(
            [self.binary, "stdin", "stdout", "-l", "+".join(languages), "--psm", "3", "tsv"],
            input=png, capture_output=True, env=env, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"tesseract failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:300]}")
        return parse_tsv(proc.stdout.decode("utf-8", errors="replace"))


def parse_tsv(tsv: str) -> OcrResult:
    """Rebuild text from Tesseract's TSV: words by line, lines by paragraph, a blank line between paragraphs."""
    rows = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    confidences: list[float] = []
    for row in rows:
        if row.get("level") != "5":
            continue
        word = (row.get("text") or "").strip()
        if not word:
            continue
        conf = float(row["conf"])
        if conf >= 0:
            confidences.append(conf)
        key = (int(row["block_num"]), int(row["par_num"]))
        paragraphs.setdefault(key, {}).setdefault(int(row["line_num"]), []).append(word)
    text = "\n\n".join(
        "\n".join(" ".join(words) for _, words in sorted(lines.items()))
        for _, lines in sorted(paragraphs.items())
    )
    confidence = round(sum(confidences) / len(confidences), 2) if confidences else None
    return OcrResult(text=text, confidence=confidence)


ENGINES: dict[str, type] = {"tesseract": Tesseract}


def get_engine(name: str) -> OcrEngine:
    if name not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r} (known: {', '.join(ENGINES)})")
    return ENGINES[name]()
