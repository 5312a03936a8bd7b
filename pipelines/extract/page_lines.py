"""Which lines of a page's main region are its content: the region's third view, its lines scored one by one.

The main region (page_region.py) keeps nearly all of a page's content (word recall 0.89-0.98 by page type on
WCXB's dev split) but also the page's other text (precision 0.43-0.83). A small boosted-tree model
(classifiers/page_route.py trains it, cross-validated by site) scores each line: what the line is (length,
words, punctuation, digits, its share of link text, the kind of block it starts, a table or code), where it is
(position, the lines around it, runs of short lines, repeats), whether trafilatura kept it, and what the page is
(the router's page features). The lines scored above a threshold are the `filtered` view the router can keep
(route.filtered_view).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from itertools import accumulate
from typing import Any, Sequence

from classifiers.boosted_trees import predict_many
from pipelines.extract.page_region import TAGS, Line

_WORD = re.compile(r"\w+")
_CHROME_WORDS = re.compile(
    r"\b(cookies?|log ?in|sign (in|up)|subscribe|newsletter|copyright|all rights reserved|privacy|terms|share|"
    r"follow us|menu|skip to|read more|see more|view all|load more|back to top|cart|wishlist|search)\b", re.I)
_ENDS_SENTENCE = re.compile(r"[.!?:;\"”)]$")
_CURRENCY = re.compile(r"[$€£¥₹]\s?\d")
_DATE = re.compile(r"\b(19|20)\d\d\b|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\bago\b", re.I)
# the case-blind patterns as written, for lower-cased ASCII lines: a case-blind search costs three times a plain
# one (an ASCII line lower-cased and searched as written is the case-blind search, character for character)
_LOWER = {p: re.compile(p.pattern) for p in (_CHROME_WORDS, _DATE)}
_SHORT = 30  # characters: a line under this is a label, a link, a menu entry
_FAR = 50    # lines: the distance to trafilatura's text is capped here
NAMES = ("log_chars", "words", "ends_sentence", "capitalised", "digits", "in_traf", "lines_to_traf",
         "position", "chars_before", "log_repeats", "log_prev_chars", "log_next_chars", "prev_in_traf",
         "next_in_traf", "log_short_run", "short", "chrome_words", "currency", "date", "commas_per_word",
         "log_lines", "traf_share", "lines_in_traf", "links", "prev_links", "next_links") + tuple(
    f"tag_{t}" for t in TAGS)


def words(text: str) -> str:
    """A text's lower-cased words, one space apart: lines are matched against other texts in this form."""
    return " ".join(_WORD.findall(text.lower()))


def line_features(lines: Sequence[Line], text: str) -> list[list[float]]:
    """Each line's features, in the order of NAMES (the page's own are added by the caller); `text` is
    trafilatura's text of the page."""
    return line_columns(lines, text).tolist()


def line_columns(lines: Sequence[Line], text: str) -> Any:
    """line_features as an array, a row per line: each feature is computed for all lines at once, and the rows
    never pass through Python lists of numbers (a page's 160 lines cost a millisecond less)."""
    import numpy as np

    n = len(lines)
    if not n:
        return np.zeros((0, len(NAMES)))
    traf = words(text)
    texts = [line.text for line in lines]
    tokens = [t.split() for t in texts]
    lengths = [len(t) for t in texts]
    in_traf = [1.0 if (w := words(t)) and w in traf else 0.0 for t in texts]
    short = [1.0 if length < _SHORT else 0.0 for length in lengths]
    repeats = Counter(texts)
    total = max(sum(lengths), 1)
    log_chars = list(map(math.log1p, lengths))
    links = [line.links for line in lines]
    columns = [
        log_chars,
        [float(len(ts)) for ts in tokens],
        [float(bool(_ENDS_SENTENCE.search(t))) for t in texts],
        [sum(w[:1].isupper() for w in ts) / max(len(ts), 1) for ts in tokens],
        [sum(map(str.isdigit, t)) / max(length, 1) for t, length in zip(texts, lengths)],
        in_traf,
        [float(d) for d in _distances(in_traf)],
        [i / n for i in range(n)],
        [before / total for before in accumulate(lengths[:-1], initial=0)],
        [math.log1p(repeats[t]) for t in texts],
        [-1.0] + log_chars[:-1], log_chars[1:] + [-1.0],
        [-1.0] + in_traf[:-1], in_traf[1:] + [-1.0],
        [math.log1p(run) for run in _runs(short)],
        short,
        _found(_CHROME_WORDS, texts),
        [float(bool(_CURRENCY.search(t))) for t in texts],
        _found(_DATE, texts),
        [t.count(",") / max(len(ts), 1) for t, ts in zip(texts, tokens)],
    ]
    page = [math.log1p(n), len(text) / total, sum(in_traf) / max(n, 1)]
    out = np.empty((n, len(NAMES)))
    out[:, :len(columns)] = np.array(columns).T
    out[:, len(columns):len(columns) + 3] = page
    at = len(columns) + 3
    out[:, at:at + 3] = np.array([links, [-1.0] + links[:-1], links[1:] + [-1.0]]).T
    out[:, at + 3:] = 0.0
    out[np.arange(n), at + 3 + np.array([line.tag for line in lines])] = 1.0
    return out


def _found(pattern: re.Pattern[str], texts: list[str]) -> list[float]:
    """1.0 for each text the case-blind `pattern` finds something in, else 0.0."""
    lower = _LOWER[pattern].search
    return [float(bool(lower(t.lower()) if t.isascii() else pattern.search(t))) for t in texts]


def _distances(flags: list[float]) -> list[int]:
    """Lines from each line to the nearest flagged one, capped at _FAR."""
    out, d = [], _FAR
    for flag in flags:
        d = 0 if flag else min(d + 1, _FAR)
        out.append(d)
    d = _FAR
    for i in range(len(flags) - 1, -1, -1):
        d = 0 if flags[i] else min(d + 1, _FAR)
        out[i] = min(out[i], d)
    return out


def _runs(flags: list[float]) -> list[int]:
    """The length of the run of equal flags each line is in."""
    out, i = [], 0
    while i < len(flags):
        j = i
        while j < len(flags) and flags[j] == flags[i]:
            j += 1
        out.extend([j - i] * (j - i))
        i = j
    return out


def scores(lines: Sequence[Line], text: str, page: list[float], model: dict[str, Any]) -> list[float]:
    """Each line's predicted chance of being the page's content; `page` is the router's page features."""
    import numpy as np

    features = line_columns(lines, text)
    rows = np.hstack([features, np.broadcast_to(np.asarray(page, dtype=np.float64), (len(features), len(page)))])
    return [out[0] for out in predict_many(model, rows)]

