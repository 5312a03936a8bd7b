"""The document schema: one pyarrow schema for every stage and every output.

A document travels through a worker as a `Row`, a plain dict with the keys below. `kept/` shards hold
KEPT_SCHEMA; `rejected/` shards hold REJECTED_SCHEMA, which adds `reason` (``stage:rule``) and `detail`. A
unit's staged pieces hold STAGED_SCHEMA: every row of the unit, kept so far or rejected, with the few columns
the later decisions read (its row number in the unit, text bytes, URL key, date, MinHash band keys).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import pyarrow as pa

Row = dict[str, Any]

# A list of key/value entries rather than an Arrow map: the same layout (DuckDB's map_from_entries reads it as a
# map), and Hugging Face `datasets`, which has no map type, loads it.
SCORES = pa.list_(pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.float32())]))

KEPT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("locator", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("format", pa.string(), nullable=False),
        pa.field("extractor", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("n_chars", pa.int64(), nullable=False),
        pa.field("n_words", pa.int64(), nullable=False),
        pa.field("content_hash", pa.string()),
        pa.field("scores", SCORES),  # [{key: quality_<name> or domain, value}], sorted by key
        pa.field("rule_values", SCORES),  # [{key: rule name, value}] of every enabled heuristic rule, sorted by key
        pa.field("domain", pa.string()),
        pa.field("license", pa.string()),
        pa.field("consent", pa.string()),
        pa.field("dup_cluster_id", pa.string()),
        pa.field("dup_cluster_size", pa.int32()),
        # JSON object with sorted keys: title, date, WARC record id, fields of JSONL/Parquet inputs...
        pa.field("metadata", pa.string()),
    ]
)

REJECTED_SCHEMA = KEPT_SCHEMA.append(pa.field("reason", pa.string(), nullable=False)).append(
    pa.field("detail", pa.string())
)

STAGED_SCHEMA = pa.schema(
    [f if f.name != "reason" else pa.field("reason", pa.string()) for f in REJECTED_SCHEMA]
    + [
        pa.field("row", pa.int64(), nullable=False),  # the record's position in its unit, in reading order
        pa.field("text_bytes", pa.int64(), nullable=False),
        pa.field("url_key", pa.uint64()),  # a hash of the normalised URL
        pa.field("date", pa.string()),  # the date URL dedup compares (WARC date, else the page's date)
        pa.field("bands", pa.binary()),  # MinHash band keys, 8 bytes each
        pa.field("sig", pa.binary()),  # the MinHash signature, 16 bits of each value
    ]
)

STAGES = ("read", "optout", "extract", "filter", "decontam", "classify", "dedup")


def doc_id(source_uri: str, locator: str) -> str:
    """Stable, content-derived id: a hash of where the record came from, never a row position."""
    return hashlib.sha256(f"{source_uri}\x00{locator}".encode()).hexdigest()[:32]


def new_doc(
    *,
    source: str,
    source_uri: str,
    locator: str,
    fmt: str,
    text: str | None = None,
    url: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A document dict with every schema column present."""
    return {
        "id": doc_id(source_uri, locator),
        "text": text,
        "source": source,
        "source_uri": source_uri,
        "locator": locator,
        "url": url,
        "format": fmt,
        "extractor": None,
        "lang": None,
        "lang_score": None,
        "n_chars": 0,
        "n_words": 0,
        "content_hash": None,
        "scores": None,
        "rule_values": None,
        "domain": None,
        "license": None,
        "consent": None,
        "dup_cluster_id": None,
        "dup_cluster_size": None,
        "metadata": dict(metadata or {}),
    }


def reject(doc: dict[str, Any], reason: str, detail: str = "") -> dict[str, Any]:
    """Turn a document into a rejected row. `reason` is ``stage:rule``."""
    stage = reason.split(":", 1)[0]
    if stage not in STAGES or ":" not in reason:
        raise ValueError(f"reason must be 'stage:rule' with stage in {STAGES}, got {reason!r}")
    row = dict(doc)
    row["reason"] = reason
    row["detail"] = detail
    return row


def is_rejected(row: dict[str, Any]) -> bool:
    return "reason" in row


MAX_METADATA_DEPTH = 64  # deeper metadata is dropped by the readers (and said so): every later step recurses


def nesting(value: Any, limit: int = MAX_METADATA_DEPTH) -> int:
    """How deeply lists and dicts nest in a value (0 for a scalar), counted without recursion and up to
    `limit` + 1 (a value nested past the limit is not walked further)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            level += 1
            deepest = max(deepest, level)
            if level <= limit:
                stack.extend((v, level) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def strict_json(value: Any) -> Any:
    """A value that serialises as strict JSON in UTF-8: NaN and infinities become null, lone surrogates U+FFFD,
    other objects their str()."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {strict_json(str(k)): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    return strict_json(str(value))


def strict_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every field but its text made strict (see strict_json): what a reader hands on can always be
    encoded, shuffled and written. The text itself is checked by the reader (a bad text is a rejected row)."""
    for key, value in row.items():
        if key not in ("text", "_html", "_pdf") and isinstance(value, (str, float, dict, list, tuple)):
            row[key] = strict_json(value)
    return row


def has_surrogate(text: str) -> bool:
    """A lone UTF-16 surrogate (from a JSON \\ud800 escape or an undecodable file name): not encodable as UTF-8."""
    return bool(_SURROGATE.search(text))


_SURROGATE = re.compile("[\ud800-\udfff]")


def to_arrow_row(doc: dict[str, Any]) -> dict[str, Any]:
    """Serialise the dict-valued columns for Arrow (metadata as sorted, strict JSON; scores as sorted items)."""
    row = dict(doc)
    row["metadata"] = json.dumps(strict_json(doc.get("metadata") or {}), sort_keys=True, ensure_ascii=False,
                                 allow_nan=False)
    row["scores"] = score_entries(doc.get("scores"))
    row["rule_values"] = score_entries(doc.get("rule_values"))
    return row


def score_entries(scores: dict[str, float] | None) -> list[dict[str, Any]] | None:
    """A document's scores (or rule values) as the `scores` column holds them: key/value entries sorted by key."""
    return [{"key": k, "value": v} for k, v in sorted(scores.items())] if scores else None


def scores_of(column: Any) -> dict[str, float]:
    """The `scores` column of a row read back (entries, or the (key, value) pairs of a map) as a dict."""
    if not column:
        return {}
    if isinstance(column, dict):
        return dict(column)
    return {e["key"]: e["value"] for e in column} if isinstance(column[0], dict) else dict(column)


def to_table(rows: list[dict[str, Any]], rejected: bool, schema: pa.Schema | None = None) -> pa.Table:
    schema = schema or (REJECTED_SCHEMA if rejected else KEPT_SCHEMA)
    converted = [to_arrow_row(r) for r in rows]
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in converted], schema=schema)
