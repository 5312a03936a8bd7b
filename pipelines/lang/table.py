"""The per-language threshold table shipped with refinery (thresholds.json, made by make_table.py)."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from pipelines.lang.words import segmenter_name

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "thresholds.json")
LID_FLOOR = 0.3  # FineWeb-2's lowest language ID threshold, for languages without a row


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    with open(TABLE, encoding="utf-8") as fh:
        return json.load(fh)["languages"]


def row_name(lang: str | None) -> str | None:
    """The table row that holds a language's thresholds as its words are cut on this machine, or None (the
    published English thresholds apply)."""
    rows = table()
    if lang is None:
        return None
    if segmenter_name(lang) == "chars":
        return f"{lang}/chars" if f"{lang}/chars" in rows else "*/chars"
    return lang if lang in rows else None


def rule_thresholds(lang: str | None) -> dict[str, float]:
    """The table's thresholds for a language (empty: none of its own)."""
    name = row_name(lang)
    return dict(table()[name]["rules"]) if name else {}


def lid_min_score(lang: str | None) -> float:
    """The language ID confidence a document identified as this language needs by default."""
    row = table().get(lang or "")
    return float(row["lid_min_score"]) if row and "lid_min_score" in row else LID_FLOOR
