"""Filters: named rules that keep a document or reject it as `filter:<rule>` with the measured value."""
from __future__ import annotations

from typing import Any

from classifiers.langid import identify

from .config import FilterSettings
from .schema import reject

Row = dict[str, Any]


def apply_filters(doc: Row, settings: FilterSettings) -> Row:
    """Annotate language, then apply the rules in order; the first failing rule names the rejection."""
    lang, score = identify(doc["text"])
    doc["lang"], doc["lang_score"] = lang, score
    if not settings.enabled:
        return doc
    n = doc["n_words"]
    if n < settings.min_words:
        return reject(doc, "filter:min_words", f"n_words={n} < {settings.min_words}")
    if settings.max_words is not None and n > settings.max_words:
        return reject(doc, "filter:max_words", f"n_words={n} > {settings.max_words}")
    if settings.languages and lang not in settings.languages:
        return reject(doc, "filter:language", f"lang={lang} ({score:.3f}) not in {list(settings.languages)}")
    if score < settings.min_lang_score:
        return reject(doc, "filter:lang_score", f"lang_score={score:.3f} < {settings.min_lang_score}")
    return doc
