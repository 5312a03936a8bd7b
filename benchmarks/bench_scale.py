"""Curate at corpus scale: wall time, documents per second, peak memory and bytes shuffled, by corpus size.

Builds N documents of real text (runs of paragraphs of the bundled books, Python sources and encyclopedia
articles, one domain per document, each with a URL and a date), plants near-copies (one word in a hundred
replaced), exact copies and repeated URLs among them, writes them as JSONL files of 50,000 documents, and runs
`refinery curate` on them in a subprocess with the default filters and dedup. Peak RSS is summed over the
curate process and all its children, sampled every 0.2 s.

    python benchmarks/bench_scale.py --docs 100000,300000,1000000
    python benchmarks/bench_scale.py --docs 20000 --baseline /path/to/an/older/refinery   # side by side
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
PER_FILE = 50_000


def paragraph_pool() -> dict[str, list[str]]:
    """Paragraphs (cut to at most 150 words) of three domains of the bundled corpus."""
    pools: dict[str, list[str]] = {"books": [], "code": [], "wiki": []}

    def add(domain: str, text: str) -> None:
        for para in re.split(r"\n\s*\n", text):
            words = para.split(" ")
            if len(para.split()) < 25:
                continue
            for i in range(0, len(words), 150):
                chunk = " ".join(words[i : i + 150]).strip()
                if len(chunk.split()) >= 25:
                    pools[domain].append(chunk)

    for path in sorted((DATA / "books").glob("*.txt")):
        add("books", path.read_text(encoding="utf-8", errors="replace"))
    for path in sorted((DATA / "code").glob("*.py")):
        add("code", path.read_text(encoding="utf-8", errors="replace"))
    with gzip.open(DATA / "wiki" / "wiki.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            add("wiki", json.loads(line)["text"].replace("\n", "\n\n"))
    return pools


def edit(text: str, rng: random.Random, fraction: float) -> str:
    words = text.split(" ")
    vocabulary = words[: 200]
    for i in rng.sample(range(len(words)), max(1, int(len(words) * fraction))):
        words[i] = rng.choice(vocabulary)
    return " ".join(words)


def build(folder: Path, n: int, seed: int = 0) -> dict[str, int]:
    """n documents in JSONL files under folder; returns counts of what was planted and the text bytes."""
    rng = random.Random(seed)
    pools = paragraph_pool()
    domains = sorted(pools)
    planted = {"near_copies": 0, "exact_copies": 0, "repeated_urls": 0, "text_bytes": 0}
    recent: list[str] = []
    urls: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    out = None
    for i in range(n):
        if i % PER_FILE == 0:
            if out:
                out.close()
            out = open(folder / f"part-{i // PER_FILE:05d}.jsonl", "w", encoding="utf-8")
        url = f"https://site{i % 9973}.example.org/{rng.choice(domains)}/page-{i}"
        roll = rng.random()
        if recent and roll < 0.03:
            text = edit(rng.choice(recent), rng, 0.01)
            planted["near_copies"] += 1
        elif recent and roll < 0.04:
            text = rng.choice(recent)
            planted["exact_copies"] += 1
        else:
            pool = pools[rng.choice(domains)]
            text = "\n\n".join(rng.choice(pool) for _ in range(rng.randint(3, 10)))
        if urls and rng.random() < 0.01:
            url = rng.choice(urls)  # the same page crawled again
            planted["repeated_urls"] += 1
        recent = (recent + [text])[-1000:]
        urls = (urls + [url])[-1000:]
        date = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
        out.write(json.dumps({"text": text, "url": url, "date": date}) + "\n")
        planted["text_bytes"] += len(text.encode("utf-8"))
    if out:
        out.close()
    return planted


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of a process and all its descendants, and of the process alone."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(name))
            rss[int(name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total, rss.get(pid, 0)


def run(code: Path, base: Path, data: Path, workers: int) -> dict:
    """`refinery curate` of `code` (a checkout) on data; wall, peak tree RSS and the run's stats."""
    out = base / "out"
    if out.exists():
        shutil.rmtree(out)
    config = {"sources": [{"name": "web", "format": "jsonl", "paths": [str(data / "*.jsonl")]}], "output": str(out)}
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "curate", str(base / "curate.yaml"), "--workers",
                             str(workers), "--quiet"], cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            tree, driver = tree_rss(proc.pid)
            peak[0], peak[1] = max(peak[0], tree), max(peak[1], driver)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    done.set()
    watcher.join()
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"curate failed ({proc.returncode}):\n{err[-3000:]}")
    stats = json.loads((out / "stats.json").read_text())
    return {"wall": wall, "peak": peak[0], "driver": peak[1], "stats": stats}


def line(label: str, n: int, r: dict) -> str:
    move = r["stats"].get("data_movement") or {}
    shuffled = move.get("shuffled_bytes")
    text = move.get("text_bytes")
    moved = (f"shuffled {shuffled / 1e6:8.1f} MB = {100 * shuffled / text:5.2f}% of {text / 1e6:7.1f} MB text"
             if shuffled is not None and text else "shuffled bytes not counted")
    t = r["stats"]["totals"]
    return (f"{label:<9} N={n:>9,}  wall {r['wall']:8.1f} s  {n / r['wall']:7.0f} docs/s  peak RSS "
            f"{r['peak'] / 2**30:5.2f} GiB ({r['peak'] / n / 1024:6.2f} KiB/doc; driver {r['driver'] / 2**30:4.2f} GiB)  "
            f"{moved}  kept {t['kept']:,} rejected {t['rejected']:,}"
            + (f"\n{'':<9} shuffled by step (bytes/doc): " + ", ".join(
                f"{k} {v / n:.1f}" for k, v in sorted(move["shuffled_by_step"].items(), key=lambda kv: -kv[1]))
               if move.get("shuffled_by_step") else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="100000,300000,1000000", help="comma-separated corpus sizes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline", type=Path, help="another refinery checkout to run on the same data")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side, alternating; the fastest is reported")
    ap.add_argument("--folder", type=Path, help="where to build the data (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the data and the output")
    args = ap.parse_args()
    sizes = [int(x) for x in args.docs.split(",")]
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"{os.cpu_count()} cores; {args.workers} workers; data under {folder}", flush=True)
    results = {}
    for n in sizes:
        base = folder / f"n{n}"
        planted = build(base / "data", n)
        print(f"N={n:,}: {planted['text_bytes'] / 1e6:.1f} MB of text ({planted['text_bytes'] / n:.0f} bytes/doc), "
              f"{planted['near_copies']:,} near-copies, {planted['exact_copies']:,} exact copies, "
              f"{planted['repeated_urls']:,} repeated URLs", flush=True)
        runs: dict[str, list[dict]] = {"refinery": [], "baseline": []}
        for r in range(args.repeat):  # side by side in the order A B B A ...: drift in the machine's speed cancels
            order = ["refinery", "baseline"] if args.baseline else ["refinery"]
            for name in order if r % 2 == 0 else order[::-1]:
                runs[name].append(run(ROOT if name == "refinery" else args.baseline, base, base / "data", args.workers))
        results[n] = min(runs["refinery"], key=lambda x: x["wall"])
        print(line("refinery", n, results[n]), flush=True)
        if args.baseline:
            before = min(runs["baseline"], key=lambda x: x["wall"])
            print(line("baseline", n, before), flush=True)
            print(f"{'':<9} ratio: time {before['wall'] / results[n]['wall']:.2f}x faster, peak RSS "
                  f"{before['peak'] / results[n]['peak']:.2f}x smaller", flush=True)
        if not args.keep:
            shutil.rmtree(base)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        growth = (results[hi]["peak"] - results[lo]["peak"]) / (hi - lo)
        print(f"memory growth {lo:,} -> {hi:,}: {growth / 1024:.2f} KiB per document")
        for a, b in zip(sizes, sizes[1:]):
            print(f"time ratio {a:,} -> {b:,} ({b / a:.1f}x the documents): {results[b]['wall'] / results[a]['wall']:.2f}x")
    if not args.folder and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
