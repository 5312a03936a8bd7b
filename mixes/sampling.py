"""Candidate mixtures: Dirichlet draws centred on the token-count prior, RegMix-style, under epoch caps."""
from __future__ import annotations

import numpy as np


def epoch_caps(domain_tokens: np.ndarray, budget_tokens: float, max_epochs: float) -> np.ndarray:
    """The largest weight of each domain that repeats it at most max_epochs times at the budget."""
    return np.minimum(1.0, max_epochs * domain_tokens / budget_tokens)


def sample_mixtures(prior: np.ndarray, n: int, caps: np.ndarray, rng: np.random.Generator, exponent: float = 0.5,
                    concentration: tuple[float, float] = (0.1, 5.0), min_weight: float = 0.01,
                    max_tries: int = 1000) -> np.ndarray:
    """n mixtures [n, K]: Dirichlet(c * K * p) with p the prior flattened by `exponent` and c drawn log-uniformly
    from `concentration`; weights under min_weight are zeroed; mixtures breaking a cap are drawn again."""
    if caps.sum() < 1.0 - 1e-9:
        raise ValueError(f"the epoch caps allow at most {caps.sum():.3f} of the budget: raise max_epochs or "
                         "lower budget_tokens")
    base = prior ** exponent
    base = base / base.sum()
    k = len(prior)
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries * n:
            raise RuntimeError(f"drew {tries} mixtures and kept {len(out)}: the caps leave little room; "
                               "raise max_epochs or lower budget_tokens")
        c = float(np.exp(rng.uniform(np.log(concentration[0]), np.log(concentration[1]))))
        w = rng.dirichlet(np.maximum(c * k * base, 1e-3))
        w[w < min_weight] = 0.0
        if w.sum() == 0:
            continue
        w = w / w.sum()
        if np.all(w <= caps + 1e-12):
            out.append(w)
    return np.array(out)
