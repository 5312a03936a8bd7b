"""MinHash benchmarks: signature throughput against a plain datasketch update loop, and the whole dedup stage
at two input sizes (documents per second and peak memory).

    python benchmarks/bench_minhash.py [--docs 2000] [--repeats 3]

Input: real text (Wikipedia articles and the plays and poems of examples/data), cut into documents of about 300
words, with an edited copy of every fourth one so that the stage has near-duplicates to find.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datasketch import MinHash  # noqa: E402

from pipelines.dedup.minhash import shingle_hashes, signatures  # noqa: E402
from pipelines.lang.words import units  # noqa: E402
from pipelines.text import normalize  # noqa: E402

NUM_PERM, SEED, NGRAM = 112, 42, 5


def real_documents(n: int) -> list[str]:
    data = ROOT / "examples" / "data"
    texts = [json.loads(line)["text"] for line in gzip.open(data / "wiki" / "wiki.jsonl.gz", "rt")]
    texts += [p.read_text() for p in sorted((data / "books").glob("*.txt"))]
    tokens = [w for t in texts for w in t.split()]
    docs = []
    rng = random.Random(1)
    i = 0
    while len(docs) < n:
        start = (i * 300) % (len(tokens) - 300)
        doc = tokens[start : start + 300]
        docs.append(" ".join(doc))
        if len(docs) % 4 == 0 and len(docs) < n:  # a near-duplicate: 3% of the words replaced
            edited = doc[:]
            for j in rng.sample(range(300), 9):
                edited[j] = rng.choice(tokens)
            docs.append(" ".join(edited))
        i += 1
    return docs[:n]


def plain_loop(docs: list[str]) -> None:
    """The baseline: one MinHash per document, updated shingle by shingle."""
    for text in docs:
        tokens = units(normalize(text))
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        for i in range(max(1, len(tokens) - NGRAM + 1)):
            m.update(" ".join(tokens[i : i + NGRAM]).encode("utf-8"))


def refinery_path(docs: list[str]) -> None:
    """refinery: words hashed once, shingles rolled with numpy, signatures through MinHash.bulk."""
    for start in range(0, len(docs), 256):
        batch = [shingle_hashes(t, NGRAM) for t in docs[start : start + 256]]
        signatures(batch, NUM_PERM, SEED)


def timed(fn, docs, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(docs)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stage_run(n: int) -> None:
    """Child process: a curate run whose only stage is MinHash dedup, on n documents (one JSONL file, one
    in-process worker); prints docs/s and peak RSS."""
    import tempfile

    from pipelines.config.curate import parse_config
    from pipelines.jobs.curate import run_curate

    with tempfile.TemporaryDirectory() as tmp:
        with open(f"{tmp}/docs.jsonl", "w", encoding="utf-8") as fh:
            for text in real_documents(n):
                fh.write(json.dumps({"text": text}) + "\n")
        cfg = parse_config({"sources": [{"name": "bench", "format": "jsonl", "paths": ["docs.jsonl"]}],
                            "output": "out", "filters": {"enabled": False}, "pii": {"enabled": False},
                            "dedup": {"exact": False, "url": False}}, tmp)
        t = time.perf_counter()
        run_curate(cfg, workers=1, show_progress=False)
        elapsed = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"docs": n, "seconds": round(elapsed, 2), "docs_per_s": round(n / elapsed, 1),
                      "peak_rss_mb": round(peak_mb, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stage-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage_child:
        stage_run(args.stage_child)
        return

    docs = real_documents(args.docs)
    base = timed(plain_loop, docs, args.repeats)
    ours = timed(refinery_path, docs, args.repeats)
    print(f"signatures, {len(docs)} real documents of ~300 words, {NUM_PERM} permutations, median of {args.repeats}:")
    print(f"  datasketch MinHash.update loop : {base:7.3f} s  ({len(docs) / base:8.0f} docs/s)")
    print(f"  refinery shingles + bulk       : {ours:7.3f} s  ({len(docs) / ours:8.0f} docs/s)")
    print(f"  ratio                          : {base / ours:7.2f}x faster")

    print("\ncurate with MinHash as its only stage (Beam, in-process runner, one worker), each size in a fresh process:")
    results = []
    for n in (args.docs, 2 * args.docs):
        out = subprocess.run([sys.executable, __file__, "--stage-child", str(n)], capture_output=True, text=True,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"  {r['docs']:6d} docs: {r['seconds']:6.2f} s, {r['docs_per_s']:7.1f} docs/s, peak RSS {r['peak_rss_mb']:.0f} MB")
    growth = results[1]["seconds"] / results[0]["seconds"]
    print(f"  time ratio for twice the input: {growth:.2f} (2.00 is linear)")


if __name__ == "__main__":
    main()
