"""Regression from mixture weights to eval scores: ridge on [w, log(w + eps)], closed form, numpy only.

The ridge penalty is chosen by cross-validation over folds that keep repeated seeds of one mixture together;
the same folds give the held-out predictions behind the reported rank correlation, Pearson and R². Plain linear
regression on w is the baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

EPS = 1e-3
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def features(w: np.ndarray, log_terms: bool = True) -> np.ndarray:
    w = np.atleast_2d(w)
    return np.hstack([w, np.log(w + EPS)]) if log_terms else w


@dataclass
class Ridge:
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    penalty: float
    log_terms: bool = True

    @classmethod
    def fit(cls, w: np.ndarray, y: np.ndarray, penalty: float, log_terms: bool = True) -> "Ridge":
        x = features(w, log_terms)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        yc = y - y.mean()
        coef = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ yc)
        return cls(coef, float(y.mean()), mean, scale, penalty, log_terms)

    def predict(self, w: np.ndarray) -> np.ndarray:
        return ((features(w, self.log_terms) - self.mean) / self.scale) @ self.coef + self.intercept

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """d prediction / d w at one mixture."""
        k = len(w)
        b = self.coef / self.scale
        g = b[:k].copy()
        if self.log_terms:
            g += b[k:] / (w + EPS)
        return g


def _folds(groups: np.ndarray, n_folds: int) -> list[np.ndarray]:
    uniq = np.unique(groups)
    n_folds = min(n_folds, len(uniq))
    assign = {g: i % n_folds for i, g in enumerate(uniq)}
    return [np.array([assign[g] == f for g in groups]) for f in range(n_folds)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(rankdata(a), rankdata(b))  # ties share their average rank


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else float("nan")


def cv_predictions(w: np.ndarray, y: np.ndarray, groups: np.ndarray, penalty: float, log_terms: bool,
                   n_folds: int = 5) -> np.ndarray:
    pred = np.empty(len(y))
    for test in _folds(groups, n_folds):
        pred[test] = Ridge.fit(w[~test], y[~test], penalty, log_terms).predict(w[test])
    return pred


@dataclass
class FitReport:
    model: Ridge
    heldout_pred: np.ndarray
    metrics: dict
    baseline_metrics: dict


def fit_metric(w: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int = 5) -> FitReport:
    """Ridge with the CV-chosen penalty, its held-out predictions and metrics, and the linear baseline's."""
    best, best_err = PENALTIES[0], float("inf")
    for p in PENALTIES:
        err = float(((cv_predictions(w, y, groups, p, True, n_folds) - y) ** 2).mean())
        if err < best_err:
            best, best_err = p, err
    pred = cv_predictions(w, y, groups, best, True, n_folds)
    base = cv_predictions(w, y, groups, 1e-8, False, n_folds)  # plain linear regression on w

    def metrics(p: np.ndarray) -> dict:
        return {"spearman": round(spearman(y, p), 4), "pearson": round(pearson(y, p), 4), "r2": round(r2(y, p), 4)}

    return FitReport(Ridge.fit(w, y, best), pred, {**metrics(pred), "penalty": best}, metrics(base))
