"""Stop words per language, for Gopher's stop-word rule.

English keeps Gopher's own eight words (the, be, to, of, and, that, have, with). Other languages use the
stopwords-iso lists (the `stopwordsiso` package, MIT): longer lists, so their thresholds come from the language's
own counts in the threshold table. A language with no list has no stop-word rule.
"""
from __future__ import annotations

from functools import lru_cache

GOPHER = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
ALIASES = {"nb": "no", "nn": "no", "wuu": "zh", "yue": "zh"}


@lru_cache(maxsize=None)
def stop_words(lang: str | None) -> frozenset[str]:
    """The stop words of a language (lower case); empty when none are known."""
    if lang is None:
        return frozenset()
    if lang == "en":
        return GOPHER
    import stopwordsiso

    code = ALIASES.get(lang, lang)
    return frozenset(w.lower() for w in stopwordsiso.stopwords(code)) if stopwordsiso.has_lang(code) else frozenset()
