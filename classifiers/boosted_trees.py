"""Small gradient-boosted trees: fitted with numpy, stored as JSON, evaluated in plain Python.

The extractor's page router (pipelines/extract/route.py) runs them once per page on a few dozen features, where
plain Python beats the set-up cost of an array library. A model is a dict: `kind` ("regression" or "softmax"),
`classes` (softmax), `base` (the starting score of each output) and `trees` (one list of trees per output). A
tree is a leaf value, or `[feature, threshold, left, right]`: a feature value at or under the threshold (or
missing, NaN) goes left.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

Tree = Any  # float | list: [feature, threshold, left, right]


def predict_tree(tree: Tree, x: Sequence[float]) -> float:
    while isinstance(tree, list):
        feature, threshold, left, right = tree
        value = x[feature]
        tree = right if value > threshold else left  # NaN compares false: left
    return tree


def predict(model: dict[str, Any], x: Sequence[float]) -> list[float]:
    """The raw scores of one feature vector: one per output (regression: one). The model's trees are compiled
    once into one Python expression per output: a tenth of the time of walking them."""
    return _prepared(_COMPILED, model, _compile)(x)


_COMPILED: dict[int, tuple[dict[str, Any], Any]] = {}  # id(model) -> (model, its compiled function)
_FLAT: dict[int, tuple[dict[str, Any], Any]] = {}  # id(model) -> (model, each output's trees as arrays)


def _prepared(cache: dict[int, tuple[dict[str, Any], Any]], model: dict[str, Any], prepare: Any) -> Any:
    """`prepare(model)`, made once per model object and kept while the model lives (64 models at most)."""
    held = cache.get(id(model))
    if held is None or held[0] is not model:
        if len(cache) >= 64:
            cache.clear()
        held = cache[id(model)] = (model, prepare(model))
    return held[1]


def _expression(tree: Tree) -> str:
    if not isinstance(tree, list):
        return repr(float(tree))
    feature, threshold, left, right = tree
    # as predict_tree: right where the value is above the threshold; at or under it, or NaN, left
    return f"({_expression(right)} if x[{int(feature)}] > {float(threshold)!r} else {_expression(left)})"


def _compile(model: dict[str, Any]) -> Any:
    outputs = [" + ".join([repr(float(base))] + [_expression(t) for t in trees])
               for base, trees in zip(model["base"], model["trees"])]
    source = f"lambda x: [{', '.join(outputs)}]"
    return eval(compile(source, "<boosted trees>", "eval"), {"__builtins__": {}})  # noqa: S307 - our own numbers


def predict_many(model: dict[str, Any], rows: Any) -> list[list[float]]:
    """predict() of many feature vectors at once, bit for bit: every tree is walked for all rows together in numpy
    (a value above the threshold goes right; at or under it, or NaN, left), and each row's tree values are added
    to the base one tree after the other, in predict()'s order. A page's lines are scored this way: a third of
    the time of one call per line. `rows`: a sequence of feature vectors, or a 2-d array of them."""
    import numpy as np

    if len(rows) == 0:
        return []
    flat = _prepared(_FLAT, model, lambda m: [_flatten(trees) for trees in m["trees"]])
    X = np.asarray(rows, dtype=np.float64)
    at = np.arange(len(X))[:, None]
    columns = []
    for base, (feature, threshold, left, right, value, roots, depth) in zip(model["base"], flat):
        node = np.broadcast_to(roots, (len(X), len(roots)))
        for _ in range(depth):  # a leaf leads to itself
            node = np.where(X[at, feature[node]] > threshold[node], right[node], left[node])
        values = value[node]
        total = np.full(len(X), float(base))
        for t in range(values.shape[1]):
            total = total + values[:, t]
        columns.append(total.tolist())
    return [list(out) for out in zip(*columns)]


def _flatten(trees: list[Tree]) -> tuple:
    """One output's trees as node arrays (feature, threshold, left, right, leaf value), each tree's root, and the
    deepest tree's depth. A leaf's threshold is NaN and its children are itself."""
    import numpy as np

    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []

    def add(tree: Tree, depth: int) -> tuple[int, int]:
        at = len(feature)
        feature.append(0)
        threshold.append(math.nan)
        left.append(at)
        right.append(at)
        value.append(0.0)
        if not isinstance(tree, list):
            value[at] = float(tree)
            return at, depth
        feature[at], threshold[at] = int(tree[0]), float(tree[1])
        left[at], d_left = add(tree[2], depth + 1)
        right[at], d_right = add(tree[3], depth + 1)
        return at, max(d_left, d_right)

    roots, deepest = [], 0
    for tree in trees:
        root, depth = add(tree, 0)
        roots.append(root)
        deepest = max(deepest, depth)
    return (np.array(feature, dtype=np.intp), np.array(threshold), np.array(left, dtype=np.intp),
            np.array(right, dtype=np.intp), np.array(value), np.array(roots, dtype=np.intp), deepest)


def predict_proba(model: dict[str, Any], x: Sequence[float]) -> dict[str, float]:
    """A softmax model's class probabilities for one feature vector."""
    scores = predict(model, x)
    top = max(scores)
    exp = [math.exp(s - top) for s in scores]
    total = sum(exp)
    return {name: e / total for name, e in zip(model["classes"], exp)}


# ---- fitting (numpy) ----

def _thresholds(X: Any, bins: int) -> list[Any]:
    import numpy as np

    out = []
    for column in X.T:
        values = column[~np.isnan(column)]
        cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])) if len(values) else np.array([])
        out.append(cuts)
    return out


def _binned(X: Any, cuts: list[Any]) -> Any:
    import numpy as np

    Xb = np.zeros(X.shape, dtype=np.int32)
    for f, c in enumerate(cuts):
        column = np.where(np.isnan(X[:, f]), -np.inf, X[:, f])  # missing: the lowest bin, as predict_tree does
        Xb[:, f] = np.searchsorted(c, column, side="left")
    return Xb


def _grow(Xb: Any, cuts: list[Any], g: Any, h: Any, rows: Any, depth: int, p: dict[str, float]) -> Tree:
    """One node: a leaf, or the split of the best gain over every feature's bins (one histogram for all)."""
    import numpy as np

    G, H = g[rows].sum(), h[rows].sum()
    leaf = float(-G / (H + p["l2"]) * p["rate"])
    if depth == 0 or len(rows) < 2 * p["min_leaf"]:
        return leaf
    n_features, nb = Xb.shape[1], p["bins"] + 1
    flat = (Xb[rows] + np.arange(n_features) * nb).ravel()
    shape = (n_features, nb)
    gl = np.cumsum(np.bincount(flat, weights=np.repeat(g[rows], n_features), minlength=n_features * nb)
                   .reshape(shape), axis=1)[:, :-1]
    hl = np.cumsum(np.bincount(flat, weights=np.repeat(h[rows], n_features), minlength=n_features * nb)
                   .reshape(shape), axis=1)[:, :-1]
    nl = np.cumsum(np.bincount(flat, minlength=n_features * nb).reshape(shape), axis=1)[:, :-1]
    ok = (nl >= p["min_leaf"]) & (len(rows) - nl >= p["min_leaf"])
    ok &= np.arange(nb - 1)[None, :] < np.array([len(c) for c in cuts])[:, None]  # a bin with a threshold
    gain = gl ** 2 / (hl + p["l2"]) + (G - gl) ** 2 / (H - hl + p["l2"]) - G * G / (H + p["l2"])
    gain[~ok] = -np.inf
    f, i = np.unravel_index(int(np.argmax(gain)), gain.shape)
    if not gain[f, i] > p["min_gain"]:
        return leaf
    left = rows[Xb[rows, f] <= i]
    right = rows[Xb[rows, f] > i]
    return [int(f), float(cuts[f][i]), _grow(Xb, cuts, g, h, left, depth - 1, p),
            _grow(Xb, cuts, g, h, right, depth - 1, p)]


def _predict_rows(tree: Tree, X: Any) -> Any:
    """One tree's values for every row of an array (missing values go left, as in predict_tree)."""
    import numpy as np

    if not isinstance(tree, list):
        return np.full(len(X), tree)
    feature, threshold, left, right = tree
    right_rows = X[:, feature] > threshold
    out = np.empty(len(X))
    out[~right_rows] = _predict_rows(left, X[~right_rows])
    out[right_rows] = _predict_rows(right, X[right_rows])
    return out


def _params(depth: int, rate: float, min_leaf: int, l2: float, bins: int) -> dict[str, float]:
    return {"depth": depth, "rate": rate, "min_leaf": min_leaf, "l2": l2, "min_gain": 1e-9, "bins": bins}


def fit_regression(X: Any, y: Any, rounds: int = 150, depth: int = 3, rate: float = 0.05, min_leaf: int = 10,
                   l2: float = 1.0, bins: int = 32) -> dict[str, Any]:
    """Squared-error boosting of `y` (n) on `X` (n x features, NaN for missing)."""
    import numpy as np

    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    cuts = _thresholds(X, bins)
    Xb = _binned(X, cuts)
    p = _params(depth, rate, min_leaf, l2, bins)
    base = float(y.mean())
    score = np.full(len(y), base)
    rows = np.arange(len(y))
    trees = []
    for _ in range(rounds):
        tree = _grow(Xb, cuts, score - y, np.ones(len(y)), rows, depth, p)
        trees.append(tree)
        score += _predict_rows(tree, X)
    return {"kind": "regression", "base": [base], "trees": [trees]}


def fit_softmax(X: Any, labels: Sequence[str], rounds: int = 150, depth: int = 3, rate: float = 0.1,
                min_leaf: int = 10, l2: float = 1.0, bins: int = 32) -> dict[str, Any]:
    """Multi-class boosting (softmax loss) of `labels` on `X`."""
    import numpy as np

    X = np.asarray(X, dtype=np.float64)
    classes = sorted(set(labels))
    Y = np.array([[label == c for c in classes] for label in labels], dtype=np.float64)
    cuts = _thresholds(X, bins)
    Xb = _binned(X, cuts)
    p = _params(depth, rate, min_leaf, l2, bins)
    prior = np.clip(Y.mean(axis=0), 1e-6, None)
    base = np.log(prior) - np.log(prior).mean()
    scores = np.tile(base, (len(X), 1))
    rows = np.arange(len(X))
    trees: list[list[Tree]] = [[] for _ in classes]
    for _ in range(rounds):
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        for k in range(len(classes)):
            g = prob[:, k] - Y[:, k]
            h = np.maximum(prob[:, k] * (1 - prob[:, k]), 1e-6)
            tree = _grow(Xb, cuts, g, h, rows, depth, p)
            trees[k].append(tree)
            scores[:, k] += _predict_rows(tree, X)
    return {"kind": "softmax", "classes": classes, "base": [float(b) for b in base], "trees": trees}
