"""`refinery classifier train`: gather labelled text (files or a curated pool), train fastText, write a card."""
from __future__ import annotations

import glob
import hashlib
import os
from typing import Iterator

import pyarrow.parquet as pq

from classifiers.fasttext_model import train_classifier

from pipelines.config.classifier import ClassifierTrainConfig
from pipelines.runtime.files import read_texts


def _pool_texts(pool: str, sources: list[str] | None, sample: int | None) -> list[str]:
    rows = []
    for path in sorted(glob.glob(os.path.join(pool, "kept", "*.parquet"))):
        t = pq.read_table(path, columns=["id", "text", "source"]).to_pylist()
        rows.extend(r for r in t if not sources or r["source"] in sources)
    rows.sort(key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())  # a deterministic sample
    if sample:
        rows = rows[:sample]
    return [r["text"] for r in rows]


def chunks(text: str, size: int) -> Iterator[str]:
    if size <= 0:
        yield text
        return
    words = text.split()
    for i in range(0, len(words), size):
        piece = words[i : i + size]
        if len(piece) >= max(5, size // 4):
            yield " ".join(piece)


def gather(cfg: ClassifierTrainConfig) -> list[tuple[str, str]]:
    examples: list[tuple[str, str]] = []
    for label, specs in cfg.labels.items():
        for spec in specs:
            if spec.paths is not None:
                texts = [t for p in spec.paths for t in read_texts(p, spec.text_field)]
            else:
                texts = _pool_texts(spec.pool, spec.sources, spec.sample)
            examples.extend((label, c) for t in texts for c in chunks(t, cfg.chunk_words))
    return examples


def run_train(cfg: ClassifierTrainConfig) -> dict:
    examples = gather(cfg)
    sources = {label: [{k: (os.path.relpath(v, cfg.base_dir) if k == "pool" else
                            [os.path.relpath(p, cfg.base_dir) for p in v] if k == "paths" else v)
                        for k, v in spec.model_dump(exclude_unset=True).items()} for spec in specs] for label, specs in cfg.labels.items()}
    return train_classifier(examples, cfg.output, cfg.params, cfg.name, positive=cfg.positive, sources=sources)
