"""fastText classifiers trained here: quality (two labels) and domain (several), with a card beside each model.

The same `prepare()` normalises text at training and at scoring time. Training is single-threaded with a fixed
seed, so the same data and settings give the same model bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from importlib.metadata import PackageNotFoundError, version
from typing import Iterable

import numpy as np
from pydantic import Field

from pipelines.config.base import Section
from pipelines.runtime import storage
from pipelines.runtime.files import atomic_path, sha256_file, write_json

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def prepare(text: str, max_words: int = 500) -> str:
    """The normalised, one-line form fastText sees: lower case, words and punctuation split by spaces."""
    return " ".join(_TOKEN.findall(text.lower())[:max_words])


class TrainParams(Section):
    """fastText training settings (the `params` section of a classifier config)."""

    epoch: int = Field(10, ge=1)
    lr: float = Field(0.5, gt=0)
    word_ngrams: int = Field(2, ge=1)
    dim: int = Field(64, ge=1)
    min_count: int = Field(1, ge=1)
    heldout_fraction: float = Field(0.2, ge=0, lt=1)
    seed: int = Field(0, ge=0)
    max_words: int = Field(500, ge=1)


def fasttext_version() -> str:
    for dist in ("fasttext-community", "fasttext", "fasttext-numpy2"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "unknown"


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a positive outranks a negative (ties count half)."""
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata  # 0.7 s to import: only where a model is measured, not in every job

    ranks = rankdata(scores)  # tied scores share their average rank
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    out = {"roc_auc": round(roc_auc(scores, labels), 4), "thresholds": {}}
    for t in (0.1, 0.3, 0.5, 0.7, 0.9):
        pred = scores >= t
        tp = int((pred & labels).sum())
        out["thresholds"][f"{t:.1f}"] = {
            "precision": round(tp / int(pred.sum()), 4) if pred.sum() else None,
            "recall": round(tp / int(labels.sum()), 4) if labels.sum() else None,
            "keep_fraction": round(float(pred.mean()), 4),
        }
    return out


FASTTEXT_MAGIC = 793712314  # the int32 every fastText .bin and .ftz file starts with


def check_model_file(path: str) -> str | None:
    """Why `path` is not a fastText model file refinery can load, or None when it is."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if len(head) < 8 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
        return f"{path} is not a fastText model (.bin or .ftz)"
    return None


class Classifier:
    """A trained fastText model with its card."""

    def __init__(self, path: str) -> None:
        import fasttext

        from pipelines.runtime import storage

        self.path = path
        self.model = fasttext.load_model(storage.local_copy(path))  # fastText opens files by name
        card_path = path + ".card.json"
        self.card = json.loads(storage.read_bytes(card_path)) if storage.exists(card_path) else {}
        self.max_words = self.card.get("params", {}).get("max_words", 500)
        self.labels = [lab.replace("__label__", "") for lab in self.model.get_labels()]

    def sha256(self) -> str:
        return sha256_file(self.path)[:16]

    def predict(self, texts: list[str]) -> list[dict[str, float]]:
        """Probability of every label for each text (one batched call)."""
        labels, probs = self.model.predict([prepare(t, self.max_words) for t in texts], k=len(self.labels))
        return [{lab.replace("__label__", ""): float(min(p, 1.0)) for lab, p in zip(ls, ps)}
                for ls, ps in zip(labels, probs)]


def _split(items: list[tuple[str, str]], fraction: float, seed: int) -> tuple[list, list]:
    """Held-out split by a hash of the text with the seed: stable whatever the order of the input."""
    train, held = [], []
    for label, text in items:
        h = int(hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()[:8], 16) / 2**32
        (held if h < fraction else train).append((label, text))
    return train, held


def train_classifier(examples: Iterable[tuple[str, str]], output: str, params: TrainParams, name: str,
                     positive: str | None = None, sources: dict | None = None) -> dict:
    """Train on (label, text) pairs, evaluate on a held-out split, write `output` and `output.card.json`.

    With two labels and `positive` set, the card reports ROC AUC and precision/recall at several thresholds
    for P(positive); otherwise accuracy and per-label precision and recall.
    """
    import fasttext

    items = [(label, prepare(text, params.max_words)) for label, text in examples]
    items = [(lab, t) for lab, t in items if t]
    labels = sorted({lab for lab, _ in items})
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least two labels with examples, got {labels}")
    train, held = _split(items, params.heldout_fraction, params.seed)
    rng = random.Random(params.seed)
    rng.shuffle(train)
    storage.makedirs(storage.dirname(output) or ".")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for lab, t in train:
            fh.write(f"__label__{lab} {t}\n")
        train_file = fh.name
    try:
        data_hash = sha256_file(train_file)
        model = fasttext.train_supervised(
            input=train_file, epoch=params.epoch, lr=params.lr, wordNgrams=params.word_ngrams, dim=params.dim,
            minCount=params.min_count, seed=params.seed, thread=1, verbose=0, loss="softmax")
    finally:
        os.unlink(train_file)
    if storage.is_url(output):  # fastText saves by name: a local file, then one upload
        with tempfile.TemporaryDirectory() as folder:
            model.save_model(os.path.join(folder, "model.bin"))
            storage.copy(os.path.join(folder, "model.bin"), output)
    else:
        with atomic_path(output) as tmp:
            model.save_model(tmp)

    clf = Classifier.__new__(Classifier)
    clf.model, clf.max_words, clf.labels = model, params.max_words, labels
    held_labels = [lab for lab, _ in held]
    probs = clf.predict([t for _, t in held]) if held else []
    if positive is not None:
        if positive not in labels:
            raise ValueError(f"positive label {positive!r} is not among the labels {labels}")
        metrics = binary_metrics(np.array([p.get(positive, 0.0) for p in probs]),
                                 np.array([lab == positive for lab in held_labels]))
    else:
        pred = [max(p, key=p.get) for p in probs]
        metrics = {"accuracy": round(float(np.mean([a == b for a, b in zip(pred, held_labels)])), 4) if held else None,
                   "per_label": {lab: {
                       "precision": round(sum(1 for a, b in zip(pred, held_labels) if a == b == lab)
                                          / max(1, sum(1 for a in pred if a == lab)), 4),
                       "recall": round(sum(1 for a, b in zip(pred, held_labels) if a == b == lab)
                                       / max(1, sum(1 for b in held_labels if b == lab)), 4)} for lab in labels}}
    card = {
        "name": name,
        "labels": labels,
        "positive_label": positive,
        "examples": {"train": len(train), "heldout": len(held),
                     "per_label": {lab: sum(1 for x, _ in items if x == lab) for lab in labels}},
        "train_data_sha256": data_hash,
        "sources": sources or {},
        "params": params.model_dump(),
        "normalisation": "lower case; \\w+ and single punctuation marks joined by spaces; first max_words tokens",
        "metrics_heldout": metrics,
        "fasttext": fasttext_version(),
        "model_sha256": sha256_file(output),
        "model_bytes": storage.getsize(output),
    }
    write_json(output + ".card.json", card)
    return card
