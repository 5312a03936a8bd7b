"""fastText scoring: documents per second on one core, one document per call against one batched call.

    python benchmarks/bench_fasttext.py [--docs 5000] [--repeats 3]

A quality classifier is trained here on real text (Wikipedia articles against Python source), then scores
documents cut from the same corpora, with refinery's normalisation applied on both sides.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifiers.fasttext_model import Classifier, TrainParams, prepare, train_classifier  # noqa: E402


def corpus(n: int) -> list[tuple[str, str]]:
    data = ROOT / "examples" / "data"
    wiki = [json.loads(line)["text"] for line in gzip.open(data / "wiki" / "wiki.jsonl.gz", "rt")]
    code = [p.read_text() for p in sorted((data / "code").glob("*.py"))]
    out = []
    for label, texts in (("prose", wiki), ("code", code)):
        words = " ".join(texts).split()
        out += [(label, " ".join(words[i : i + 300])) for i in range(0, len(words) - 300, 300)]
    return (out * (n // len(out) + 1))[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    docs = corpus(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "q.bin")
        train_classifier(docs[:2000], path, TrainParams(epoch=3), "bench", positive="prose")
        clf = Classifier(path)
        texts = [t for _, t in docs]

        def one_by_one() -> None:
            for t in texts:
                clf.model.predict(prepare(t, clf.max_words), k=len(clf.labels))

        def batched() -> None:
            clf.predict(texts)

        results = {}
        for name, fn in (("one document per call", one_by_one), ("one batched call", batched)):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            results[name] = statistics.median(times)
    print(f"fastText scoring, {len(texts)} documents of 300 words, one core, median of {args.repeats}:")
    for name, t in results.items():
        print(f"  {name:<22}: {len(texts) / t:9.0f} docs/s")
    base, ours = results["one document per call"], results["one batched call"]
    print(f"  ratio                 : {base / ours:.2f}x")


if __name__ == "__main__":
    main()
