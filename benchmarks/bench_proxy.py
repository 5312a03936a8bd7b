"""Proxy training throughput: K proxies one at a time against the same K proxies stacked in one model.

    python benchmarks/bench_proxy.py                       # CPU defaults: 2 layers, d=64
    python benchmarks/bench_proxy.py --device cuda --layers 4 --d-model 256 --context 256 --batch 32 \
        --proxies 8,32,64 --steps 40

Real text (plays and poems, Python source, Wikipedia from examples/data) as three domains, byte-level tokens;
each proxy gets its own random mixture and seed. Prints tokens per second, the ratio, and proxies per hour at a
budget of --budget tokens per proxy. Needs only numpy, torch and pyarrow (it runs on a bare GPU machine).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxies.data import Domain, Pool, tokenize_pool  # noqa: E402
from proxies.model import GPTConfig  # noqa: E402
from proxies.tokenizer import ByteTokenizer  # noqa: E402
from proxies.train import TrainSettings, pick_device, train_group  # noqa: E402


def demo_pool() -> Pool:
    data = ROOT / "examples" / "data"
    books = [p.read_text() for p in sorted((data / "books").glob("*.txt"))]
    code = [p.read_text() for p in sorted((data / "code").glob("*.py"))]
    wiki = [json.loads(line)["text"] for line in gzip.open(data / "wiki" / "wiki.jsonl.gz", "rt")]
    domains = [Domain(n, train_texts=t, train_bytes=sum(len(x.encode()) for x in t))
               for n, t in (("books", books), ("code", code), ("wiki", wiki))]
    pool = Pool(domains, "bench")
    tokenize_pool(pool, ByteTokenizer())
    return pool


def run(pool: Pool, k: int, stacked: bool, cfg: GPTConfig, s: TrainSettings, device: torch.device) -> float:
    rng = np.random.default_rng(k)
    weights = [rng.dirichlet(np.ones(3)) for _ in range(k)]
    if stacked:
        return train_group(pool, weights, list(range(k)), cfg, s, device).wall_s
    return sum(train_group(pool, [w], [i], cfg, s, device).wall_s for i, w in enumerate(weights))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--proxies", default="8")
    ap.add_argument("--budget", type=float, default=5e6, help="tokens per proxy for the proxies-per-hour figure")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    device = pick_device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    pool = demo_pool()
    cfg = GPTConfig(256, args.layers, args.heads, args.d_model, args.context)
    s = TrainSettings(steps=args.steps, batch=args.batch, warmup=5, compile=args.compile)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; model {args.layers} layers x d={args.d_model}, "
          f"context {args.context}, batch {args.batch} sequences per proxy, {args.steps} steps per proxy")
    run(pool, 2, True, cfg, TrainSettings(steps=3, batch=args.batch, warmup=1, compile=args.compile), device)  # warm-up
    tokens_per_proxy = args.steps * args.batch * args.context
    for k in (int(x) for x in args.proxies.split(",")):
        one = run(pool, k, False, cfg, s, device)
        many = run(pool, k, True, cfg, s, device)
        tps_one, tps_many = k * tokens_per_proxy / one, k * tokens_per_proxy / many
        print(f"K={k:3d}  one at a time {tps_one:12,.0f} tok/s ({3600 * tps_one / args.budget:8.1f} proxies/h)   "
              f"stacked {tps_many:12,.0f} tok/s ({3600 * tps_many / args.budget:8.1f} proxies/h)   "
              f"ratio {one / many:6.2f}x")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
