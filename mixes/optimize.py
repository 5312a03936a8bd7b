"""Choose the mixture: minimise the fitted objective plus a KL-to-prior penalty over the simplex, inside box
bounds (the epoch caps, and the range of weights the swarm covered), by projected gradient descent from
several starts; cross-checked by a RegMix-style search over many sampled mixtures."""
from __future__ import annotations

from typing import Callable

import numpy as np


def project(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {w : sum w = 1, lo <= w <= hi} (bisection on the shift)."""
    if lo.sum() > 1 + 1e-9 or hi.sum() < 1 - 1e-9:
        raise ValueError("the bounds leave no mixture: sum(lo) > 1 or sum(hi) < 1")
    a, b = float((v - hi).min()) - 1.0, float((v - lo).max()) + 1.0
    for _ in range(100):
        t = (a + b) / 2
        if np.clip(v - t, lo, hi).sum() > 1:
            a = t
        else:
            b = t
    return np.clip(v - (a + b) / 2, lo, hi)


def kl(w: np.ndarray, prior: np.ndarray) -> float:
    m = w > 0
    return float((w[m] * np.log(w[m] / prior[m])).sum())


def optimise(value: Callable[[np.ndarray], float], grad: Callable[[np.ndarray], np.ndarray], prior: np.ndarray,
             lo: np.ndarray, hi: np.ndarray, kl_weight: float, starts: list[np.ndarray], steps: int = 3000,
             lr: float = 0.05) -> np.ndarray:
    """The best mixture found from the starts: value(w) + kl_weight * KL(w || prior), minimised."""
    floor = 1e-6

    def total(w: np.ndarray) -> float:
        return value(w) + kl_weight * kl(w, prior)

    best, best_val = None, float("inf")
    for start in starts:
        w = project(np.asarray(start, float), lo, hi)
        step = lr
        cur = total(w)
        for _ in range(steps):
            g = grad(w) + kl_weight * (np.log(np.maximum(w, floor) / prior) + 1.0)
            cand = project(w - step * g / max(1.0, np.abs(g).max()), lo, hi)
            val = total(cand)
            if val < cur - 1e-12:
                w, cur = cand, val
                step = min(step * 1.2, 0.5)
            else:
                step *= 0.5
                if step < 1e-7:
                    break
        if cur < best_val:
            best, best_val = w, cur
    return best


def search(value: Callable[[np.ndarray], np.ndarray], candidates: np.ndarray, top: int = 100) -> np.ndarray:
    """RegMix-style: the mean of the `top` sampled mixtures with the best predicted objective."""
    scores = value(candidates)
    best = candidates[np.argsort(scores)[:top]]
    w = best.mean(axis=0)
    return w / w.sum()
