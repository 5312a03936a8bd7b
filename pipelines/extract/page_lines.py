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
from typing import Any, Sequence

from classifiers.boosted_trees import predict
from pipelines.extract.page_region import TAGS, Line

_WORD = re.compile(r"\w+")
_CHROME_WORDS = re.compile(
    r"\b(cookies?|log ?in|sign (in|up)|subscribe|newsletter|copyright|all rights reserved|privacy|terms|share|"
    r"follow us|menu|skip to|read more|see more|view all|load more|back to top|cart|wishlist|search)\b", re.I)
_ENDS_SENTENCE = re.compile(r"[.!?:;\"”)]$")
_CURRENCY = re.compile(r"[$€£¥₹]\s?\d")
_DATE = re.compile(r"\b(19|20)\d\d\b|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\bago\b", re.I)
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
    n = len(lines)
    traf = words(text)
    in_traf = [1.0 if (w := words(line.text)) and w in traf else 0.0 for line in lines]
    lengths = [len(line.text) for line in lines]
    short = [1.0 if length < _SHORT else 0.0 for length in lengths]
    to_traf = _distances(in_traf)
    runs = _runs(short)
    repeats = Counter(line.text for line in lines)
    total = max(sum(lengths), 1)
    page = [math.log1p(n), len(text) / total, sum(in_traf) / max(n, 1)]
    out, before = [], 0
    for i, line in enumerate(lines):
        tokens = line.text.split()
        tag = [0.0] * len(TAGS)
        tag[line.tag] = 1.0
        out.append([
            math.log1p(lengths[i]), float(len(tokens)), float(bool(_ENDS_SENTENCE.search(line.text))),
            sum(t[:1].isupper() for t in tokens) / max(len(tokens), 1),
            sum(c.isdigit() for c in line.text) / max(lengths[i], 1),
            in_traf[i], float(to_traf[i]), i / n, before / total, math.log1p(repeats[line.text]),
            math.log1p(lengths[i - 1]) if i else -1.0, math.log1p(lengths[i + 1]) if i + 1 < n else -1.0,
            in_traf[i - 1] if i else -1.0, in_traf[i + 1] if i + 1 < n else -1.0,
            math.log1p(runs[i]), short[i], float(bool(_CHROME_WORDS.search(line.text))),
            float(bool(_CURRENCY.search(line.text))), float(bool(_DATE.search(line.text))),
            line.text.count(",") / max(len(tokens), 1),
            *page, line.links, lines[i - 1].links if i else -1.0, lines[i + 1].links if i + 1 < n else -1.0, *tag,
        ])
        before += lengths[i]
    return out


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
    return [predict(model, x + page)[0] for x in line_features(lines, text)]

