"""MinHash building blocks: shingles, signatures (datasketch), LSH band keys, and the banding maths.

Each document's words are hashed once; word n-gram shingle hashes are rolled up from them with numpy, and the
same shingle-hash array serves the MinHash signature and the exact Jaccard check of candidate pairs.
"""
from __future__ import annotations

import hashlib
import zlib
from typing import Any, Iterable

import numpy as np

from pipelines.lang.words import units
from pipelines.text import normalize

_MASK32 = np.uint64(0xFFFFFFFF)
_ROLL = np.uint64(1_000_003)


def _word_hash(word: str) -> int:
    """A stable 64-bit word hash from two CRC-32s (C speed; Python's hash() changes between processes)."""
    b = word.encode("utf-8")
    return (zlib.crc32(b) << 32) | zlib.crc32(b, 0x9E3779B9)


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """Sorted unique 32-bit hashes of the n-grams of units of the normalised text: words, or characters of scripts
    written without spaces (pipelines/lang/words.units), so Chinese or Japanese near-copies are found as English ones.

    A text with fewer than n words (but at least one) is one shingle: its whole word sequence. Two short texts
    then collide only when their words are identical, so short documents never fall into one shared bucket.
    An empty text has no shingles.
    """
    tokens = units(normalize(text))
    if not tokens:
        return np.zeros(0, dtype=np.uint32)
    table = {t: _word_hash(t) for t in set(tokens)}
    wh = np.fromiter((table[t] for t in tokens), dtype=np.uint64, count=len(tokens))
    k = min(n, len(tokens))
    with np.errstate(over="ignore"):  # a polynomial rolling hash: wrap-around is intended
        acc = np.zeros(len(tokens) - k + 1, dtype=np.uint64)
        for i in range(k):
            acc = acc * _ROLL + wh[i : i + len(acc)]
    acc ^= acc >> np.uint64(29)
    return np.unique((acc & _MASK32).astype(np.uint32))


def _identity(x: int) -> int:
    return x


def import_minhash() -> Any:
    """datasketch's MinHash, imported when first needed: with scipy, half a second of a job's start
    (runtime/later.py imports it beside the workers)."""
    from datasketch import MinHash

    return MinHash


def signatures(shingles: list[np.ndarray], num_perm: int, seed: int) -> list[np.ndarray]:
    """MinHash signatures of many documents at once (datasketch's bulk path, vectorised per document)."""
    mins = import_minhash().bulk([s.tolist() for s in shingles], num_perm=num_perm, seed=seed, hashfunc=_identity)
    return [m.hashvalues.astype(np.uint64) for m in mins]


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One key per band: the band index and a digest of its rows."""
    return [
        bytes([i]) + hashlib.blake2b(signature[i * rows : (i + 1) * rows].tobytes(), digest_size=12).digest()
        for i in range(bands)
    ]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique shingle-hash arrays."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def catch_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def s_curve_threshold(bands: int, rows: int) -> float:
    """Where the catch probability rises steepest, about (1/b)^(1/r)."""
    return (1.0 / bands) ** (1.0 / rows)


def bands_for_threshold(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising false positives plus false negatives around it."""
    low, high = np.linspace(0.0, threshold, 201), np.linspace(threshold, 1.0, 201)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1.0 - (1.0 - low**r) ** b, low)
            fn = np.trapezoid((1.0 - high**r) ** b, high)
            if fp + fn < best_err:
                best, best_err = (b, r), fp + fn
    return best


def explain(bands: int, rows: int, similarities: Iterable[float] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)) -> str:
    """A table of catch probabilities for users choosing bands and rows."""
    lines = [f"MinHash LSH with {bands} bands x {rows} rows ({bands * rows} hash functions); "
             f"the S-curve is steepest near Jaccard {s_curve_threshold(bands, rows):.3f}",
             f"{'Jaccard':>8}  {'P(candidate)':>12}"]
    for s in similarities:
        lines.append(f"{s:>8.2f}  {catch_probability(s, bands, rows):>12.4f}")
    return "\n".join(lines)
