"""Words per script and language: the one place a document's text is cut into words.

Most scripts separate words with spaces: there a word is a whitespace-separated run (`words`) and a token a
`\\w+` run (`tokens`), as the Gopher rules define them. Chinese, Japanese and Thai do not: there words come from
a segmenter (rjieba, fugashi with unidic-lite, PyThaiNLP), installed with `pip install 'refinery[languages]'`.
Without its segmenter, and for the other scripts written without spaces (Lao, Khmer, Burmese, Tibetan), every
character of the script is one word; the threshold table has rows for that case too (`<lang>/chars`).

Shingles for near-duplicate search and decontamination use `units`: characters of those scripts, `\\w+` runs
elsewhere. That needs no language ID and no segmenter, so two workers always cut a text the same way, and an
edit changes only the characters it touches (a segmenter may cut a phrase differently once its context changes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

# Scripts written without spaces between words: Han, Hiragana, Katakana (and half-width), Thai, Lao, Tibetan,
# Myanmar, Khmer.
UNSPACED = ("\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
            "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f\u0e00-\u0e7f\u0e80-\u0eff\u0f00-\u0fff\u1000-\u109f"
            "\u1780-\u17ff")
_UNITS = re.compile(f"[{UNSPACED}]|[^\\W{UNSPACED}]+")
_WORD = re.compile(r"\w+")
_HAS_WORD = re.compile(r"\w")
_UNSPACED_CHAR = re.compile(f"[{UNSPACED}]")

SEGMENTED = {"zh": "rjieba", "wuu": "rjieba", "yue": "rjieba", "ja": "fugashi", "th": "pythainlp"}
CHARACTERS = ("lo", "km", "my", "bo")  # no segmenter: one word per character


def units(text: str) -> list[str]:
    """The language-neutral pieces shingles are made of: each character of an unspaced script, else `\\w+` runs."""
    if text.isascii() or not _UNSPACED_CHAR.search(text):
        return _WORD.findall(text)
    return _UNITS.findall(text)


def unspaced_share(text: str) -> float:
    """The share of a text's characters that belong to scripts written without spaces."""
    return len(_UNSPACED_CHAR.findall(text)) / len(text) if text else 0.0


@lru_cache(maxsize=None)
def _segmenter(lang: str) -> Callable[[str], list[str]] | None:
    """The segmenter of a language, or None when it is not installed."""
    try:
        if SEGMENTED.get(lang) == "rjieba":
            import rjieba

            return rjieba.cut
        if SEGMENTED.get(lang) == "fugashi":
            import fugashi

            tagger = fugashi.Tagger()  # unidic-lite's dictionary, inside its package
            return lambda text: [w.surface for w in tagger(text)]
        if SEGMENTED.get(lang) == "pythainlp":
            from pythainlp.tokenize import word_tokenize

            return lambda text: word_tokenize(text, engine="newmm", keep_whitespace=False)
    except (ImportError, RuntimeError):
        return None
    return None


def segmenter_name(lang: str | None) -> str:
    """How words of this language are found: `spaces`, a segmenter's name, or `chars` (one per character)."""
    if lang in SEGMENTED:
        return SEGMENTED[lang] if _segmenter(lang) is not None else "chars"
    return "chars" if lang in CHARACTERS else "spaces"


def missing_segmenters(langs: list[str]) -> dict[str, str]:
    """{language: the package to install} for the languages given whose segmenter is not installed."""
    package = {"rjieba": "rjieba", "fugashi": "fugashi unidic-lite", "pythainlp": "pythainlp"}
    return {lang: package[SEGMENTED[lang]] for lang in sorted(set(langs))
            if lang in SEGMENTED and _segmenter(lang) is None}


@dataclass(frozen=True)
class Words:
    """A document cut into words and lower-cased word tokens for one language."""

    words: list[str]
    tokens: list[str]


def cut(text: str, lang: str | None, how: str | None = None) -> Words:
    """Words and tokens of a text in the given language (None: unknown, cut by spaces). `how` forces a way of
    cutting (`chars`: one word per character of an unspaced script), as when the segmenter is missing."""
    how = how or segmenter_name(lang)
    if how == "spaces":
        low = text.lower()  # lower-cased once, unless that changes the text's length (a few letters do)
        tokens = _WORD.findall(low) if len(low) == len(text) else [w.lower() for w in _WORD.findall(text)]
        return Words(text.split(), tokens)
    if how == "chars":
        pieces = units(text)
    else:
        pieces = [p for line in text.split("\n") for p in _segmenter(lang)(line)]
        pieces = [p.strip() for p in pieces if _HAS_WORD.search(p)]
    return Words(pieces, [p.lower() for p in pieces])


def count_words(text: str, lang: str | None) -> int:
    """The `n_words` column: words of the text in its language."""
    return len(text.split()) if segmenter_name(lang) == "spaces" else len(cut(text, lang).words)
