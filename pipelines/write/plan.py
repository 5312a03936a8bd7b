"""How many times each document of a domain goes into the training shards: the plan of `refinery shards`.

A domain is planned from slim records only: a seeded order key, the token count, the value (a quality score)
and the number of copies rehydration gives (1 without it), one entry per document, as numpy arrays. The plan
is a list of (document index, repeat) picks and a report.

- Enough tokens: documents (each with its copies) in the seeded order until the domain's target.
- Too few: every document with its copies, then further passes over the documents by value, best first, up to
  `max_epochs` passes in all; pass p adds repeat p to the documents that do not have it yet.

Rehydration (an option): a document that survived deduplication stands for a cluster of `dup_cluster_size`
near-copies. FineWeb-2 found that upsampling survivors by their cluster size helps; refinery gives a document
`copies[k]` copies for the largest threshold k its cluster size reaches (default 1: 1, 2: 2, 5: 3, 100: 4), but
only when its value is at least `min_value` (a large cluster of poor pages is boilerplate, not a signal), and
never more than `max_epochs`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipelines.schema import Row


def value_of(scores: dict | None, score: str | None) -> float:
    """The value that orders repeats: the named score, else the highest quality_* score (0 without any)."""
    scores = scores or {}
    if score:
        return float(scores.get(score, 0.0))
    return max((v for k, v in scores.items() if k.startswith("quality")), default=0.0)


def rehydrated_copies(cluster_size: np.ndarray, value: np.ndarray, table: dict[int, int], min_value: float,
                      max_epochs: float) -> np.ndarray:
    """Copies of each document from its duplicate-cluster size (a missing size counts as 1) and its value."""
    sizes = np.where(cluster_size > 0, cluster_size, 1)
    copies = np.ones(len(sizes), dtype=np.int64)
    for threshold, n in sorted(table.items()):
        copies[sizes >= threshold] = n
    copies[value < min_value] = 1
    return np.clip(copies, 1, max(1, int(math.floor(max_epochs))))


def profile_reason(row: Row, profile: Any) -> str | None:
    """Why a licence/consent profile excludes a document, or None."""
    lic, consent = row.get("license") or "unknown", row.get("consent") or "unknown"
    if profile.allow_licenses is not None and lic not in profile.allow_licenses:
        return "profile_license"
    if lic in (profile.deny_licenses or ()):
        return "profile_license"
    if profile.allow_consent is not None and consent not in profile.allow_consent:
        return "profile_consent"
    return None


def _fill(candidates: list[tuple[int, int]], got: int, target: float, tol: float) -> tuple[list[int], int]:
    """Take (index, tokens) candidates in order while they fit under target + tol; then, if still short by more
    than tol, the one remaining candidate that lands closest to the target. Returns the indices and the total."""
    taken, rest = [], []
    for i, n in candidates:
        if got >= target - tol:
            rest.append((i, n))
        elif got + n <= target + tol:
            taken.append(i)
            got += n
        else:
            rest.append((i, n))
    if got < target - tol and rest:
        i, n = min(rest, key=lambda c: abs(got + c[1] - target))
        if abs(got + n - target) < abs(got - target):
            taken.append(i)
            rest.remove((i, n))
            got += n
    return _swap_closer(taken, rest, dict(candidates), got, target, tol)


def _swap_closer(taken: list[int], rest: list[tuple[int, int]], size: dict[int, int], got: int, target: float,
                 tol: float, limit: int = 2000) -> tuple[list[int], int]:
    """When whole documents leave the total off by more than tol (large documents), move one document in, out,
    or swap a pair, while that brings the total closer. Bounded: the first `limit` of each side."""
    for _ in range(len(taken) + len(rest) + 1):
        if abs(got - target) <= tol:
            break
        best: tuple | None = None
        outs = [(i, size[t]) for i, t in enumerate(taken[:limit])] + [(None, 0)]
        ins = [(j, n) for j, (_, n) in enumerate(rest[:limit])] + [(None, 0)]
        for i, n_out in outs:
            for j, n_in in ins:
                new = got - n_out + n_in
                if (i is not None or j is not None) and abs(new - target) < abs(got - target) and \
                        (best is None or abs(new - target) < best[0]):
                    best = (abs(new - target), i, j, new)
        if best is None:
            break
        _, i, j, got = best
        out_id = taken.pop(i) if i is not None else None
        if j is not None:
            taken.append(rest.pop(j)[0])
        if out_id is not None:
            rest.append((out_id, size[out_id]))
    return taken, got


def plan_domain(order: np.ndarray, n_tokens: np.ndarray, value: np.ndarray, target: float, max_epochs: float,
                tol: float = 0.0, copies: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(document indices, repeats) of the picks, and the domain's report. `order` is each document's seeded
    order key (a 64-bit hash of its id); ties fall back to the index, so the plan is fully determined."""
    count = len(n_tokens)
    n_tokens = np.asarray(n_tokens, dtype=np.int64)
    copies = np.ones(count, dtype=np.int64) if copies is None else np.asarray(copies, dtype=np.int64)
    available = int(n_tokens.sum())
    base = int((n_tokens * copies).sum())
    shuffled = np.lexsort((np.arange(count), order))
    picks_doc: list[np.ndarray] = []
    picks_rep: list[np.ndarray] = []

    def add(docs: np.ndarray, reps: np.ndarray) -> None:
        picks_doc.append(np.asarray(docs, dtype=np.int64))
        picks_rep.append(np.asarray(reps, dtype=np.int64))

    if base >= target:
        ids, got = _fill([(int(i), int(n_tokens[i] * copies[i])) for i in shuffled], 0, target, tol)
        docs = np.array(ids, dtype=np.int64)
        reps = copies[docs] if len(docs) else np.zeros(0, dtype=np.int64)
        add(np.repeat(docs, reps), np.concatenate([np.arange(r) for r in reps]) if len(docs) else docs)
    else:
        add(np.repeat(shuffled, copies[shuffled]), np.concatenate([np.arange(copies[i]) for i in shuffled])
            if count else np.zeros(0, dtype=np.int64))
        got = base
        by_value = np.lexsort((np.arange(count), order, -np.asarray(value, dtype=np.float64)))
        for p in range(1, int(math.floor(max_epochs))):
            if got >= target - tol:
                break
            ids, got = _fill([(int(i), int(n_tokens[i])) for i in by_value if copies[i] <= p], got, target, tol)
            add(np.array(ids, dtype=np.int64), np.full(len(ids), p, dtype=np.int64))
    docs = np.concatenate(picks_doc) if picks_doc else np.zeros(0, dtype=np.int64)
    reps = np.concatenate(picks_rep) if picks_rep else np.zeros(0, dtype=np.int64)
    by_repeat = {str(int(r)): int(n) for r, n in zip(*np.unique(reps, return_counts=True))}
    report = {"requested_tokens": int(round(target)), "available_tokens": available, "achieved_tokens": int(got),
              "documents": count, "rows": int(len(docs)), "rows_by_repeat": by_repeat,
              "epochs": round(got / available, 4) if available else 0.0,
              "capped": bool(got < target - max(tol, 0.01 * target))}
    return docs, reps, report
