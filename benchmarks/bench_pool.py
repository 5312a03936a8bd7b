"""After curate: `refinery shards` and `refinery mix` on pools of N documents; time, peak memory, bytes shuffled.

Builds a curated pool of N documents of real text (bench_scale.py's generator: runs of paragraphs of the bundled
books, Python sources and encyclopedia articles; the domain is the `source` column), written the way curate
writes its output (kept/ shards of KEPT_SCHEMA in row groups of 5,000, manifest.json listing them, quality
scores and duplicate-cluster sizes), then runs, each in a subprocess with the peak RSS of its process tree
sampled every 0.2 s:

- `refinery shards` with the bytes tokenizer, a budget about the pool's size, two workers;
- with `--swarm`, `refinery swarm` of one mixture for five steps with the demo's proxy (all that `mix` loads and
  tokenizes before and through its first proxy);
- with `--mix`, the whole `refinery mix` with the demo's settings (examples/mix.yaml), and its verdict.

    python benchmarks/bench_pool.py --docs 100000,300000,1000000 --swarm --mix
    python benchmarks/bench_pool.py --docs 20000,50000 --baseline /path/to/an/older/refinery   # side by side
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import paragraph_pool, tree_rss  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipelines.schema import KEPT_SCHEMA  # noqa: E402
from pipelines.write.output import list_shards  # noqa: E402

PER_FILE = 50_000


def build_pool(folder: Path, n: int, seed: int = 0) -> int:
    """n kept documents under folder/kept with a manifest; returns the bytes of text."""
    rng = random.Random(seed)
    pools = paragraph_pool()
    domains = sorted(pools)
    (folder / "kept").mkdir(parents=True, exist_ok=True)
    text_bytes = 0
    for first in range(0, n, PER_FILE):
        rows = []
        for i in range(first, min(n, first + PER_FILE)):
            domain = domains[i % len(domains)]
            text = "\n\n".join(rng.choice(pools[domain]) for _ in range(rng.randint(3, 10)))
            text_bytes += len(text.encode("utf-8"))
            rows.append({"id": f"{i:016x}{rng.getrandbits(64):016x}", "text": text, "source": domain,
                         "source_uri": f"file:///bench/{domain}.jsonl", "locator": f"offset:{i}",
                         "url": f"https://site{i % 9973}.example.org/page-{i}", "format": "jsonl",
                         "n_chars": len(text), "n_words": len(text.split()), "license": "CC-BY-SA-4.0",
                         "consent": "public-web", "scores": [{"key": "quality_ref", "value": rng.random()}],
                         "dup_cluster_size": 1 if rng.random() < 0.9 else rng.randint(2, 20)})
        table = pa.Table.from_pylist(rows, schema=KEPT_SCHEMA)
        pq.write_table(table, folder / "kept" / f"part-{first // PER_FILE:05d}.parquet", row_group_size=5000,
                       compression="zstd")
    (folder / "manifest.json").write_text(json.dumps({"kept": list_shards(str(folder / "kept")), "rejected": []}))
    return text_bytes


def measured(code: Path, args: list[str]) -> dict:
    """Run `python -m pipelines.cli ARGS` from checkout `code`: wall time and the peak RSS of its process tree."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=code, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss(proc.pid)[0])

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall": time.monotonic() - start, "peak": peak[0]}


def bpe_tokenizer(base: Path, pool: Path) -> Path:
    """A 4,096-id BPE tokenizer trained on 2,000 documents of the pool (as `refinery mix` trains one)."""
    path = base / "tokenizer-bpe-4096.json"
    if not path.exists():
        from proxies.tokenizer import BpeTokenizer

        texts = pq.read_table(sorted((pool / "kept").glob("*.parquet"))[0], columns=["text"]).column("text")
        path.write_text(BpeTokenizer.train(texts.to_pylist()[:2000], 4096).to_json())
    return path


def shards(code: Path, base: Path, pool: Path, budget: int, workers: int, bpe: bool = False) -> dict:
    out = base / "shards"
    if out.exists():
        shutil.rmtree(out)
    config = {"pool": str(pool), "output": str(out), "weights": {"books": 0.3, "code": 0.3, "wiki": 0.4},
              "budget_tokens": budget, "max_epochs": 4, "seed": 0, "shard_tokens": 50_000_000,
              "tokenizer": {"kind": "bpe", "path": str(bpe_tokenizer(base, pool))} if bpe else {"kind": "bytes"}}
    (base / "shards.yaml").write_text(yaml.safe_dump(config))
    r = measured(code, ["shards", str(base / "shards.yaml"), "--workers", str(workers)])
    manifest = json.loads((out / "manifest.json").read_text())
    r["tokens"] = manifest["achieved_tokens"]
    r["movement"] = manifest.get("data_movement") or {}
    r["rows"] = sum(d["rows"] for d in manifest["domains"].values())
    shutil.rmtree(out)
    return r


def mix_config(pool: Path, out: Path, steps: int) -> dict:
    """The demo's mix settings (examples/mix.yaml) on this pool's three domains."""
    config = yaml.safe_load((ROOT / "examples" / "mix.yaml").read_text())
    config.update({"pool": str(pool), "output": str(out), "domains": ["books", "code", "wiki"]})
    config["eval"]["sets"] = [{"name": "wiki", "domain": "wiki", "weight": 1},
                              {"name": "code", "domain": "code", "weight": 1},
                              {"name": "tasks", "tasks": str(ROOT / "examples" / "eval" / "tasks.jsonl"), "weight": 0.5}]
    config["train"]["steps"] = steps
    return config


def swarm(code: Path, base: Path, pool: Path) -> dict:
    """Up to and through the first proxy: `refinery swarm` of one mixture, one seed, five steps."""
    out = base / "swarm"
    shutil.rmtree(out, ignore_errors=True)
    config = mix_config(pool, out, 5)
    config.pop("mix")
    config.update({"mixtures": ["natural"], "seeds": [0]})
    config["train"]["warmup"] = 1
    (base / "swarm.yaml").write_text(yaml.safe_dump(config))
    return measured(code, ["swarm", str(base / "swarm.yaml")])


def mix(code: Path, base: Path, pool: Path) -> dict:
    """The whole `refinery mix` with the demo's settings; its verdict."""
    out = base / "mix"
    shutil.rmtree(out, ignore_errors=True)
    (base / "mix.yaml").write_text(yaml.safe_dump(mix_config(pool, out, 300)))
    r = measured(code, ["mix", str(base / "mix.yaml")])
    r["verdict"] = yaml.safe_load((out / "mix.yaml").read_text())["verdict"]
    return r


def tokenize_rate(base: Path, pool: Path, n: int = 5000) -> float:
    from proxies.tokenizer import BpeTokenizer

    tok = BpeTokenizer.from_json(bpe_tokenizer(base, pool).read_text())
    texts = pq.read_table(sorted((pool / "kept").glob("*.parquet"))[0], columns=["text"]).column("text").to_pylist()[:n]
    start = time.perf_counter()
    for t in texts:
        tok.encode(t)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="100000,300000,1000000", help="comma-separated pool sizes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--swarm", action="store_true", help="also `refinery swarm` up to its first proxy")
    ap.add_argument("--mix", action="store_true", help="also the whole `refinery mix` with the demo's settings")
    ap.add_argument("--no-shards", action="store_true", help="only the swarm")
    ap.add_argument("--bpe", action="store_true", help="shards with a 4,096-id BPE tokenizer instead of bytes")
    ap.add_argument("--baseline", type=Path, help="another refinery checkout to run on the same pool")
    ap.add_argument("--folder", type=Path, help="where to build the pools (default: a temporary folder)")
    args = ap.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-pool-"))
    print(f"{os.cpu_count()} cores; {args.workers} workers; pools under {folder}", flush=True)
    first: dict[str, tuple[int, dict]] = {}
    for n in [int(x) for x in args.docs.split(",")]:
        base = folder / f"n{n}"
        pool = base / "pool"
        if not (pool / "manifest.json").exists():
            text = build_pool(pool, n)
            (base / "text_bytes").write_text(str(text))
        text = int((base / "text_bytes").read_text())
        print(f"N={n:,}: {text / 1e6:.1f} MB of text", flush=True)
        runs = []
        if not args.no_shards:
            runs.append(("shards", lambda code: shards(code, base, pool, int(text * (0.3 if args.bpe else 1.05)), args.workers,
                                                         args.bpe)))
        if args.swarm:
            runs.append(("swarm", lambda code: swarm(code, base, pool)))
        if args.mix:
            runs.append(("mix", lambda code: mix(code, base, pool)))
        for name, job in runs:
            r = job(ROOT)
            move = r.get("movement") or {}
            shuffled = sum(m.get("shuffled_bytes", 0) for m in move.values())
            by_step: dict[str, int] = {}
            for m in move.values():
                for k, v in m.get("shuffled_by_step", {}).items():
                    by_step[k] = by_step.get(k, 0) + v
            extra = (f"  {r['tokens'] / r['wall']:9,.0f} tokens/s  shuffled {shuffled / 1e6:7.1f} MB = "
                     f"{100 * shuffled / text:5.2f}% of the text ("
                     + ", ".join(f"{k} {v / n:.1f} B/doc" for k, v in sorted(by_step.items())) + ")"
                     if "tokens" in r else "") + (f"  verdict: {r['verdict']}" if "verdict" in r else "")
            print(f"{name:<7} refinery N={n:>9,}  wall {r['wall']:8.1f} s  peak RSS {r['peak'] / 2**30:5.2f} GiB "
                  f"({r['peak'] / n / 1024:6.2f} KiB/doc){extra}", flush=True)
            if "movement" in r:
                plan, write = r["movement"].get("plan", {}), r["movement"].get("write", {})
                print(f"{'':<7} plan {plan.get('wall_s', 0):.1f} s (tokenized {plan.get('tokenized_documents', 0):,} "
                      f"documents once), write {write.get('wall_s', 0):.1f} s ({r['rows']:,} rows, none tokenized "
                      "again)", flush=True)
                if args.bpe:
                    print(f"{'':<7} {tokenize_rate(base, pool):,.0f} documents/s tokenized by one core with this "
                          "tokenizer: the cost a second tokenization in the writers would add", flush=True)
            if name not in first:
                first[name] = (n, r)
            else:
                n0, r0 = first[name]
                print(f"{'':<7} from N={n0:,}: memory growth {(r['peak'] - r0['peak']) / (n - n0) / 1024:.2f} KiB/doc, "
                      f"time {r['wall'] / r0['wall']:.2f}x for {n / n0:.1f}x documents", flush=True)
            if args.baseline:
                b = job(args.baseline)
                print(f"{name:<7} baseline N={n:>9,}  wall {b['wall']:8.1f} s  peak RSS {b['peak'] / 2**30:5.2f} GiB  "
                      f"ratio: {b['wall'] / r['wall']:.2f}x faster, {b['peak'] / r['peak']:.2f}x less memory", flush=True)


if __name__ == "__main__":
    main()
