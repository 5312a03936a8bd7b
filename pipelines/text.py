"""Text helpers shared by every stage: normalisation, words, content hash."""
from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The form used for hashing and shingling: NFKC, lower case, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def words(text: str) -> list[str]:
    """Word tokens of a text (computed once per document and shared by later stages)."""
    return _WORD.findall(text)


def content_hash(text: str) -> str:
    """Hash of the normalised text: equal for texts that differ only in case, spacing or Unicode form."""
    return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=16).hexdigest()
