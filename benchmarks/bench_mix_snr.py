"""Signal against noise of CPU proxies, per training setting, at the same tokens and CPU time per proxy.

    refinery curate examples/demo.yaml            # the demo pool, once (in examples/)
    python benchmarks/bench_mix_snr.py            # every setting below, on examples/out/curated
    python benchmarks/bench_mix_snr.py --settings before,chosen

For each setting, three mixtures of the demo pool (the prior, a code-heavy and a wiki-heavy one) are each trained
with three seeds, with common random numbers, and scored on the demo's eval suite (wiki and code held out, the
tasks). Printed per setting: the objective's mean, the signal (sd of the three mixtures' means), the paired seed
noise (sd after each mixture's mean and each seed's common shift are removed, 2 x (seeds - 1) degrees of
freedom), their
ratio, the evaluation's own standard error of a difference, and the CPU seconds per proxy.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import proxies.train  # noqa: E402
from proxies.data import MixtureSampler, load_pool, tokenize_pool  # noqa: E402
from proxies.evals import build_suite, objective, paired_eval_se, score_suite  # noqa: E402
from proxies.model import GPTConfig  # noqa: E402
from proxies.swarm import paired_noise  # noqa: E402
from proxies.tokenizer import ByteTokenizer  # noqa: E402
from proxies.train import TrainSettings, setup_cpu_threads, train_group  # noqa: E402

class SlotAligned(MixtureSampler):
    """The other common-random-numbers design, for comparison (a setting name ending in "+aligned"): slot j of a
    run reads window j of its domain's order, so slots line up across mixtures, and a domain's reads are a thinned
    subset of its order rather than a prefix of it."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.slot = 0

    def starts(self, size: int) -> np.ndarray:
        doms = np.minimum(np.searchsorted(self.cdf, self.slots.random(size), side="right"), len(self.cdf) - 1)
        out = np.empty(size, dtype=np.int64)
        for d in np.unique(doms):
            where = doms == d
            out[where] = self.offsets[d] + self.orders[d].take(self.slot, size)[where]
        self.slot += size
        return out


# name: steps, batch, context, lr, warmup, average_last, eval bytes per text set; 614,400 tokens per proxy
# (512,000 for steps250)
SETTINGS = {
    "before": (300, 16, 128, 1e-3, 20, 0.0, 40_000),
    "eval100k": (300, 16, 128, 1e-3, 20, 0.0, 100_000),
    "chosen": (300, 16, 128, 1e-3, 20, 0.3, 100_000),
    "average50": (300, 16, 128, 1e-3, 20, 0.5, 100_000),
    "demo": (300, 16, 128, 1e-3, 20, 0.3, 60_000),
    "demo-average50": (300, 16, 128, 1e-3, 20, 0.5, 60_000),
    "lr2e-3": (300, 16, 128, 2e-3, 20, 0.3, 100_000),
    "ctx64": (300, 32, 64, 1e-3, 20, 0.3, 100_000),
    "steps250": (250, 16, 128, 1e-3, 20, 0.3, 100_000),
    "ctx64-lr3e-3": (600, 16, 64, 3e-3, 30, 0.3, 100_000),
    "ctx32-lr3e-3": (600, 32, 32, 3e-3, 30, 0.3, 100_000),
}
SETS = [{"name": "wiki", "domain": "wiki", "weight": 1}, {"name": "code", "domain": "code", "weight": 1},
        {"name": "tasks", "tasks": "eval/tasks.jsonl", "weight": 0.5}]
NAMES = ["wiki", "books", "code", "docs", "web"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", default=str(ROOT / "examples" / "out" / "curated"))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    setup_cpu_threads(0)
    pool = load_pool(args.pool, "source", 0.1, NAMES)
    tokenize_pool(pool, ByteTokenizer())
    mixtures = [pool.prior(), pool.vector({"wiki": 0.2, "books": 0.1, "code": 0.5, "docs": 0.15, "web": 0.05}),
                pool.vector({"wiki": 0.5, "books": 0.3, "code": 0.1, "docs": 0.05, "web": 0.05})]
    seeds = list(range(args.seeds))
    lines = []
    for name in args.settings.split(","):
        proxies.train.MixtureSampler = SlotAligned if name.endswith("+aligned") else MixtureSampler
        steps, batch, context, lr, warmup, average, eval_bytes = SETTINGS[name.removesuffix("+aligned")]
        suite = build_suite(SETS, str(ROOT / "examples"), pool, eval_bytes)
        s = TrainSettings(steps=steps, batch=batch, lr=lr, warmup=warmup, average_last=average)
        cpu0 = time.process_time()
        result = train_group(pool, [w for w in mixtures for _ in seeds], seeds * len(mixtures),
                             GPTConfig(256, 2, 4, 64, context), s, torch.device("cpu"))
        scores = score_suite(result.model, suite, ByteTokenizer(), torch.device("cpu"))
        cpu = (time.process_time() - cpu0) / len(scores.bpb)
        rows = [{"mixture": str(i // len(seeds)), "seed": seeds[i % len(seeds)], "objective": objective(b, suite)}
                for i, b in enumerate(scores.bpb)]
        y = np.array([r["objective"] for r in rows]).reshape(len(mixtures), len(seeds))
        ss, df = paired_noise(rows, "objective")
        signal, noise = float(y.mean(axis=1).std(ddof=1)), float(np.sqrt(ss / df))
        bits = [{n: b[i] for n, b in scores.unit_bits.items()} for i in range(len(rows))]
        eval_se = float(np.mean([paired_eval_se(bits[i * len(seeds)], bits[j * len(seeds)], scores.unit_bytes, suite)
                                 for i, j in ((0, 1), (0, 2), (1, 2))]))
        lines.append(f"{name:<14} objective {y.mean():.3f}  signal sd {signal:.4f}  paired noise sd {noise:.4f}  "
                     f"noise/signal {noise / signal:.3f}  eval se of a difference {eval_se:.4f}  "
                     f"CPU {cpu:5.1f} s/proxy")
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
