"""Decontamination: reject documents that share a word n-gram (13 by default) with the target eval suite."""
from __future__ import annotations

import hashlib
import os

from pipelines.runtime.files import read_texts
from pipelines.lang.words import units
from pipelines.text import normalize


def ngram_hashes(text: str, n: int) -> list[tuple[int, int]]:
    """(hash, word position) of every word n-gram of the normalised text (the whole text if shorter)."""
    toks = units(normalize(text))
    if not toks:
        return []
    k = min(n, len(toks))
    return [(int.from_bytes(hashlib.blake2b(" ".join(toks[i : i + k]).encode(), digest_size=8).digest(), "little"), i)
            for i in range(len(toks) - k + 1)]


def build_index(paths: list[str], n: int, min_words: int) -> dict[int, str]:
    """n-gram hash -> eval set name, over every eval text with at least `min_words` words."""
    index: dict[int, str] = {}
    for path in paths:
        name = os.path.basename(path)
        for text in read_texts(path):  # JSONL (text, or context + gold), Parquet or plain text
            if len(units(normalize(text))) < min_words:
                continue
            for h, _ in ngram_hashes(text, n):
                index.setdefault(h, name)
    return index


def find_overlap(text: str, index: dict[int, str], n: int) -> tuple[str, str] | None:
    """(eval set, matched span) of the first eval n-gram found in the text, or None."""
    if not index:
        return None
    toks = units(normalize(text))
    for h, i in ngram_hashes(text, n):
        if h in index:
            return index[h], " ".join(toks[i : i + n])
    return None
