"""Offline language ID.

`fasttext`: fastText's lid.176 model (176 languages, 0.9 MB, CC BY-SA 3.0, see NOTICE), which ships inside
refinery (classifiers/models/lid.176.ftz) and runs with refinery's own fastText. `py3langid`: the model inside
py3langid.
"""
from __future__ import annotations

import os
from functools import lru_cache

MAX_CHARS = 5_000  # the first few thousand characters decide; long books cost no more than a page


class LangIdUnavailable(RuntimeError):
    pass


LID176 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "lid.176.ftz")


def lid176_path() -> str:
    if not os.path.isfile(LID176):  # only a broken install (package data left out) gets here
        raise LangIdUnavailable(f"lid.176.ftz not found at {LID176}: reinstall refinery, or set "
                                "filters.language.engine: py3langid")
    return LID176


@lru_cache(maxsize=1)
def _fasttext_model():
    import fasttext

    return fasttext.load_model(lid176_path())


def py3langid_path() -> str:
    """The model file inside py3langid, as an absolute path: the package names it relative to itself, and some
    versions resolve that against the working folder (a run started elsewhere then fails)."""
    from py3langid import langid

    return os.path.join(os.path.dirname(os.path.abspath(langid.__file__)), langid.MODEL_FILE)


@lru_cache(maxsize=1)
def _py3langid():
    from py3langid import langid

    return langid.LanguageIdentifier.from_model_file(py3langid_path(), norm_probs=True)


def identify(text: str, engine: str = "fasttext") -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language."""
    sample = text[:MAX_CHARS]
    if engine == "py3langid":
        lang, prob = _py3langid().classify(sample)
        return lang, float(prob)
    labels, probs = _fasttext_model().predict(" ".join(sample.split()), k=1)
    return labels[0].replace("__label__", ""), float(min(probs[0], 1.0))


def model_hash(engine: str) -> str:
    from pipelines.runtime.files import sha256_file

    return sha256_file(lid176_path() if engine == "fasttext" else py3langid_path())[:16]
