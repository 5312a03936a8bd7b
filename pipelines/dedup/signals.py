"""What dedup needs of each row, computed by the worker that stages it: the MinHash sketch (band keys and a
short signature), the URL key and date, and the survivor rank of a row (quality score, length, id)."""
from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

import numpy as np
from apache_beam.metrics import Metrics

from pipelines.config.curate import MinHashSettings
from pipelines.dedup.minhash import band_keys, shingle_hashes, signatures
from pipelines.runtime.decisions import NAMESPACE
from pipelines.schema import Row, scores_of


def quality(doc: Row, score_name: str | None) -> float:
    scores = scores_of(doc.get("scores"))
    if score_name:
        return float(scores.get(score_name, float("-inf")))
    return max((v for k, v in scores.items() if k.startswith("quality")), default=0.0)


def survivor_key(doc: Row, score_name: str | None) -> tuple[float, int, str]:
    """Smaller is better: highest quality, then longest text (`n_chars`), then smallest id."""
    return (-quality(doc, score_name), -doc["n_chars"], doc["id"])


def normalize_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and trailing slash dropped; the query kept."""
    try:
        p = urlsplit(url.strip())
        port = p.port
    except ValueError:
        return url.strip()
    scheme = p.scheme.lower()
    netloc = (p.hostname or "").lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc += f":{port}"
    path = p.path.rstrip("/") or "/"
    return f"{scheme}://{netloc}{path}" + (f"?{p.query}" if p.query else "")


def url_key(url: str | None) -> int | None:
    """A 64-bit hash of the normalised URL (None without a URL)."""
    if not url:
        return None
    return int.from_bytes(hashlib.blake2b(normalize_url(url).encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little")


def url_date(doc: Row) -> str:
    meta = doc.get("metadata") or {}
    return str(meta.get("warc_date") or meta.get("date") or "")


def sketch(rows: list[Row], s: MinHashSettings) -> None:
    """Set `bands` (8 bytes per band key) and `sig` (the low 16 bits of each signature value) on rows that passed
    so far; rows without a word keep None."""
    todo = [r for r in rows if "reason" not in r]
    shingles = [shingle_hashes(r["text"], s.ngram) for r in todo]
    have = [i for i, sh in enumerate(shingles) if len(sh)]
    sigs = signatures([shingles[i] for i in have], s.bands * s.rows, s.seed)
    for i, sig in zip(have, sigs):
        todo[i]["bands"] = b"".join(k[1:9] for k in band_keys(sig, s.bands, s.rows))
        todo[i]["sig"] = (sig & np.uint64(0xFFFF)).astype("<u2").tobytes()
    Metrics.counter(NAMESPACE, "dedup/no_shingles").inc(len(todo) - len(have))
