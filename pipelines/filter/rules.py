"""Heuristic quality rules with their published thresholds: Gopher quality and repetition, C4, FineWeb.

Each rule measures one value of a document and compares it with its threshold; a failing document is rejected
as `filter:<rule>` (the first rule that fails) with the measured value, and every enabled rule's value is kept
in the `rule_values` column. Words, tokens and stop words are those of the document's language
(pipelines/lang), and the thresholds come from the per-language table unless the config overrides them, for all
sources, per language or per source. C4's line filter also rewrites the text (it drops lines, as C4 does) before its
document-level checks; the number of lines it dropped goes to `metadata.c4_lines_removed`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from pipelines.lang.stopwords import stop_words
from pipelines.lang.words import Words, cut

# Sentence ends of many scripts: Latin, CJK full-width, Devanagari danda, Arabic, Armenian, Ethiopic, Burmese.
ENDS = "。！？．」』।॥؟۔։።။"
TERMINAL = ('.', '!', '?', '"', "'", '”', '’', ':', ';', '…', *ENDS)
C4_TERMINAL = ('.', '!', '?', '"', *ENDS)
BULLETS = ("•", "●", "○", "▪", "‣", "⁃", "◦", "-", "*", "·", "–")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_SENTENCE_ENDS = re.compile(f"[.!?{ENDS}]+")


@dataclass
class Doc:
    """A document's text cut once into the pieces the rules read."""

    text: str
    lang: str | None = "en"  # the published thresholds are English ones
    how: str | None = None  # how words are cut (default: the language's way, see pipelines/lang/words.py)
    no_repeats_from: int = 1 << 30  # the shortest n-gram length known to have no repeated n-gram

    @cached_property
    def _cut(self) -> Words:
        return cut(self.text, self.lang, self.how)

    @cached_property
    def words(self) -> list[str]:
        return self._cut.words

    @cached_property
    def tokens(self) -> list[str]:
        return self._cut.tokens

    @cached_property
    def stop_words(self) -> frozenset[str]:
        return stop_words(self.lang)

    @cached_property
    def token_ids(self) -> np.ndarray:
        table = {t: i for i, t in enumerate(dict.fromkeys(self.tokens), 1)}
        return np.fromiter(map(table.__getitem__, self.tokens), dtype=np.uint64, count=len(self.tokens))

    @cached_property
    def token_lens(self) -> np.ndarray:
        return np.fromiter(map(len, self.tokens), dtype=np.int64, count=len(self.tokens))

    @cached_property
    def mean_word_length(self) -> float:
        return sum(map(len, self.words)) / len(self.words) if self.words else 0.0

    @cached_property
    def alpha_words(self) -> int:
        """Words with at least one alphabetic character (most are all letters: str.isalpha answers those)."""
        return sum(1 for w in self.words if w.isalpha() or any(c.isalpha() for c in w))

    @cached_property
    def sentences(self) -> int:
        """Sentences as C4 counts them: runs of text up to a run of sentence ends (one that opens the text ends
        none)."""
        runs = _SENTENCE_ENDS.findall(self.text)
        return len(runs) - (1 if runs and self.text.startswith(runs[0]) else 0)

    @cached_property
    def total_chars(self) -> int:
        return int(self.token_lens.sum())

    @cached_property
    def lines(self) -> list[str]:
        return [ln for ln in self.text.split("\n")]

    @cached_property
    def nonempty_lines(self) -> list[str]:
        return [ln.strip() for ln in self.lines if ln.strip()]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in re.split(r"\n\s*\n", self.text) if p.strip()]


def _dup_fraction(items: list[str], by_chars: bool) -> float:
    if not items:
        return 0.0
    seen: set[str] = set()
    dup = 0
    for item in items:
        if item in seen:
            dup += len(item) if by_chars else 1
        seen.add(item)
    total = sum(len(i) for i in items) if by_chars else len(items)
    return dup / total if total else 0.0


def _ngram_ids(d: "Doc", n: int) -> np.ndarray:
    """One integer per word n-gram (a rolling hash over word ids), vectorised."""
    ids = d.token_ids
    with np.errstate(over="ignore"):
        acc = np.zeros(len(ids) - n + 1, dtype=np.uint64)
        for i in range(n):
            acc = acc * np.uint64(1_000_003) + ids[i : i + len(acc)]
    return acc


def _top_ngram_fraction(d: "Doc", n: int) -> float:
    """Characters in the most frequent word n-gram (all its occurrences) over all word characters."""
    if len(d.tokens) < n or d.total_chars == 0:
        return 0.0
    grams = _ngram_ids(d, n)
    _, first, counts = np.unique(grams, return_index=True, return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] < 2:
        return 0.0
    start = int(first[top])
    return float(d.token_lens[start : start + n].sum() * counts[top] / d.total_chars)


def _dup_ngram_fraction(d: "Doc", n: int) -> float:
    """Characters of words covered by n-grams that occur more than once, over all word characters.

    A repeated n-gram holds repeated shorter ones, so the fraction never grows with n: once a shorter n-gram
    length found none, a longer one finds none either (remembered on the Doc)."""
    if len(d.tokens) < n or d.total_chars == 0 or d.no_repeats_from <= n:
        return 0.0
    grams = _ngram_ids(d, n)
    _, inv, counts = np.unique(grams, return_inverse=True, return_counts=True)
    starts = np.flatnonzero(counts[inv] > 1)
    cover = np.zeros(len(d.tokens) + 1, dtype=np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + n, -1)
    covered = np.cumsum(cover[:-1]) > 0
    if not len(starts):
        d.no_repeats_from = min(d.no_repeats_from, n)
    return float(d.token_lens[covered].sum() / d.total_chars)


def _frac(lines: list[str], pred: Callable[[str], bool]) -> float:
    return sum(1 for ln in lines if pred(ln)) / len(lines) if lines else 0.0


@dataclass(frozen=True)
class Rule:
    name: str
    measure: Callable[[Doc], float]
    op: str  # "min": value >= threshold passes; "max": value <= threshold passes
    default: float
    scales: bool = False  # the value scales with the language's words (counts, lengths, per-word ratios)
    flag: bool = False  # the value is 0 or 1 (the same threshold in every language)


RULES: list[Rule] = [
    # Gopher quality (Rae et al. 2021)
    Rule("gopher_min_words", lambda d: len(d.words), "min", 50, scales=True),
    Rule("gopher_max_words", lambda d: len(d.words), "max", 100_000, scales=True),
    Rule("gopher_min_mean_word_length", lambda d: d.mean_word_length, "min", 3, scales=True),
    Rule("gopher_max_mean_word_length", lambda d: d.mean_word_length, "max", 10, scales=True),
    Rule("gopher_symbol_ratio",
         lambda d: (d.text.count("#") + d.text.count("...") + d.text.count("…")) / max(len(d.words), 1), "max", 0.1,
         scales=True),
    Rule("gopher_bullet_lines", lambda d: _frac(d.nonempty_lines, lambda ln: ln.startswith(BULLETS)), "max", 0.9),
    Rule("gopher_ellipsis_lines", lambda d: _frac(d.nonempty_lines, lambda ln: ln.endswith(("...", "…"))), "max", 0.3),
    Rule("gopher_alpha_words",
         lambda d: d.alpha_words / max(len(d.words), 1), "min", 0.8),
    Rule("gopher_stop_words", lambda d: sum(1 for t in d.tokens if t in d.stop_words), "min", 2, scales=True),
    # Gopher repetition
    Rule("gopher_dup_line_frac", lambda d: _dup_fraction(d.nonempty_lines, False), "max", 0.3),
    Rule("gopher_dup_para_frac", lambda d: _dup_fraction(d.paragraphs, False), "max", 0.3),
    Rule("gopher_dup_line_char_frac", lambda d: _dup_fraction(d.nonempty_lines, True), "max", 0.2),
    Rule("gopher_dup_para_char_frac", lambda d: _dup_fraction(d.paragraphs, True), "max", 0.2),
    *[Rule(f"gopher_top_{n}gram", (lambda n: lambda d: _top_ngram_fraction(d, n))(n), "max", t)
      for n, t in ((2, 0.20), (3, 0.18), (4, 0.16))],
    *[Rule(f"gopher_dup_{n}gram", (lambda n: lambda d: _dup_ngram_fraction(d, n))(n), "max", t)
      for n, t in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))],
    # C4 (Raffel et al. 2020), after its line filter
    Rule("c4_lorem_ipsum", lambda d: float("lorem ipsum" in d.text.lower()), "max", 0, flag=True),
    Rule("c4_curly_braces", lambda d: float("{" in d.text), "max", 0, flag=True),
    Rule("c4_min_sentences", lambda d: d.sentences, "min", 5),
    # FineWeb (Penedo et al. 2024)
    Rule("fineweb_line_punct_ratio", lambda d: _frac(d.nonempty_lines, lambda ln: ln.endswith(TERMINAL)), "min", 0.12),
    Rule("fineweb_short_lines", lambda d: _frac(d.nonempty_lines, lambda ln: len(ln) <= 30), "max", 0.67),
    Rule("fineweb_dup_line_chars", lambda d: _dup_fraction(d.nonempty_lines, True), "max", 0.1),
    Rule("fineweb_newline_ratio", lambda d: d.text.count("\n") / max(len(d.words), 1), "max", 0.3, scales=True),
]
RULES_BY_NAME = {r.name: r for r in RULES}
C4_LINE_FILTER = "c4_line_filter"  # a switch, not a threshold: drop lines as C4 does before the C4 checks


def c4_clean(text: str) -> tuple[str, int]:
    """C4's line filter: drop lines without terminal punctuation, with fewer than 3 words, mentioning javascript,
    or carrying a policy notice. Returns the new text and the number of lines dropped."""
    kept, dropped = [], 0
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            kept.append(line)
            continue
        low = s.lower()
        if (not s.endswith(C4_TERMINAL) or len(s.split()) < 3 or "javascript" in low
                or any(p in low for p in POLICY) or max(len(w) for w in s.split()) > 1000):
            dropped += 1
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), dropped


def fails(rule: Rule, value: float, limit: float) -> bool:
    return (rule.op == "min" and value < limit) or (rule.op == "max" and value > limit)


def measure(doc: Doc, thresholds: dict[str, float]) -> tuple[dict[str, float], tuple[str, float, float] | None]:
    """Every enabled rule's value, and the first failing rule as (name, value, threshold) or None.
    `thresholds` holds the enabled rules; the stop-word rule is skipped for a language without stop words."""
    values: dict[str, float] = {}
    failed = None
    for rule in RULES:
        if rule.name not in thresholds or (rule.name == "gopher_stop_words" and not doc.stop_words):
            continue
        value = float(rule.measure(doc))
        values[rule.name] = value
        if failed is None and fails(rule, value, thresholds[rule.name]):
            failed = rule.name, value, float(thresholds[rule.name])
    return values, failed


def check(doc: Doc, thresholds: dict[str, float]) -> tuple[str, float, float] | None:
    """The first failing rule as (name, value, threshold), or None."""
    return measure(doc, thresholds)[1]
