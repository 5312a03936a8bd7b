"""`refinery classifier train`: gather labelled text (files or a curated pool), train fastText, write a card."""
from __future__ import annotations

import hashlib
import heapq
from typing import Iterator

from classifiers.fasttext_model import train_classifier

from pipelines.runtime import storage
from pipelines.config.classifier import ClassifierTrainConfig
from pipelines.read.pool import CuratedPool
from pipelines.runtime.files import read_texts


def _pool_texts(pool: str, sources: list[str] | None, sample: int | None) -> list[str]:
    """Texts of a curated pool (of `sources`), in the order of a hash of their ids; with `sample`, the first
    `sample` of that order, kept in a bounded heap while the pool streams by."""
    chosen: list[tuple[int, str, str]] = []  # (-key, id, text): a max-heap of the smallest keys
    for _, table in CuratedPool(pool, "labels.pool").scan(["id", "text", "source"]):
        for doc_id, text, source in zip(*(table.column(c).to_pylist() for c in ("id", "text", "source"))):
            if (sources and source not in sources) or not text:
                continue
            entry = (-int(hashlib.sha256(doc_id.encode()).hexdigest(), 16), doc_id, text)
            if not sample:
                chosen.append(entry)
            elif len(chosen) < sample:
                heapq.heappush(chosen, entry)
            elif entry > chosen[0]:
                heapq.heapreplace(chosen, entry)
    return [text for _, _, text in sorted(chosen, reverse=True)]


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
    sources = {label: [{k: (storage.relpath(v, cfg.base_dir) if k == "pool" else
                            [storage.relpath(p, cfg.base_dir) for p in v] if k == "paths" else v)
                        for k, v in spec.model_dump(exclude_unset=True).items()} for spec in specs] for label, specs in cfg.labels.items()}
    return train_classifier(examples, cfg.output, cfg.params, cfg.name, positive=cfg.positive, sources=sources)
