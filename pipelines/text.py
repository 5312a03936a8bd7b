"""Text helpers shared by every stage: normalisation, content hash, and the shingle score of extraction.

Words of a document in its language are cut in pipelines/lang/words.py."""
from __future__ import annotations

import collections
import hashlib
import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """The form used for hashing and shingling: NFKC, lower case, whitespace collapsed."""
    # str.split() and the regex \s both split at Unicode whitespace (str.isspace): the same text, without a
    # regex substitution per run of spaces
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def collapse_runs(text: str, chars: str, into: str) -> str:
    """Each run of the characters `chars` made one `into`: what re.sub(f"[{chars}]+", into, text) gives, with
    str.replace passes in C (a regex substitution builds a piece per match). The first of `chars` stands for
    them all while runs are halved."""
    mark = chars[0]
    for char in chars[1:]:
        if char in text:
            text = text.replace(char, mark)
    double = mark + mark
    while double in text:  # each pass halves every run
        text = text.replace(double, mark)
    return text if mark == into else text.replace(mark, into)


def content_hash(text: str) -> str:
    """Hash of the normalised text: equal for texts that differ only in case, spacing or Unicode form."""
    return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=16).hexdigest()


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    """The set of lower-cased word n-grams of a text."""
    w = _WORD.findall(text.lower())
    return set(zip(*(w[i:] for i in range(n))))  # the n-grams, built in C


def shingle_prf(predicted: str, gold: str, n: int = 4) -> tuple[float, float, float]:
    """Precision, recall and F1 of word n-gram shingle overlap: how extraction is scored against a page's gold
    main text."""
    p, g = shingles(predicted, n), shingles(gold, n)
    both = len(p & g)
    if not both:
        return 0.0, 0.0, 0.0
    precision, recall = both / len(p), both / len(g)
    return precision, recall, 2 * precision * recall / (precision + recall)


def shingle_f1(predicted: str, gold: str, n: int = 4) -> float:
    """F1 of word n-gram shingle overlap (see shingle_prf)."""
    return shingle_prf(predicted, gold, n)[2]


def word_prf(predicted: str, gold: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of the bags of lower-cased words (WCXB's measure; an empty gold text scores 1
    when nothing is extracted)."""
    p = collections.Counter(re.findall(r"\w+", predicted.lower()))
    g = collections.Counter(re.findall(r"\w+", gold.lower()))
    if not g:
        return (0.0, 0.0, 0.0) if p else (1.0, 1.0, 1.0)
    both = sum((p & g).values())
    if not both:
        return 0.0, 0.0, 0.0
    precision, recall = both / sum(p.values()), both / sum(g.values())
    return precision, recall, 2 * precision * recall / (precision + recall)
