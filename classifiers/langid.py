"""Offline language ID with py3langid (its model ships inside the wheel)."""
from __future__ import annotations

from functools import lru_cache

MAX_CHARS = 5_000  # the first few thousand characters decide; long books cost no more than a page


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language."""
    lang, prob = _identifier().classify(text[:MAX_CHARS])
    return lang, float(prob)
