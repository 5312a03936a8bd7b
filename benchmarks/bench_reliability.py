"""Reliability features and what they cost, side by side on one large JSONL file.

    python benchmarks/bench_reliability.py [--mb 60] [--workers 2]

1. Split reads: the file read whole by one worker (its records then spread over the workers) against the file
   read in byte ranges by every worker (`extract.split_bytes`).
2. Checkpoints: the same run with `resume.enabled` false and true (the cost of being resumable).
3. Resume: a run killed with SIGKILL at about half way, then run again, against a clean run.

The file is Wikipedia articles from the demo corpus, repeated with a running number in each record, through the
default filters (PII, language ID, heuristic rules, decontamination off) and exact dedup.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent


def make_file(path: Path, mb: int) -> int:
    """Records of about 300 words cut from the Wikipedia articles, each made unique by a running number."""
    wiki = [json.loads(line) for line in gzip.open(ROOT / "examples" / "data" / "wiki" / "wiki.jsonl.gz", "rt")]
    pieces = []
    for rec in wiki:
        paragraphs = rec["text"].split("\n")
        for i in range(0, len(paragraphs), 6):
            piece = "\n".join(paragraphs[i:i + 6])
            if len(piece.split()) >= 120:
                pieces.append((rec.get("title"), piece))
    n = 0
    with open(path, "w") as fh:
        while fh.tell() < mb << 20:
            title, piece = pieces[n % len(pieces)]
            fh.write(json.dumps({"text": f"Record {n}. " + piece, "title": title}) + "\n")
            n += 1
    return n


def config(data: Path, **overrides) -> dict:
    cfg = {"sources": [{"name": "wiki", "format": "jsonl", "paths": [str(data)]}], "output": "out",
           "dedup": {"minhash": {"enabled": False}}, "extract": {"split_bytes": 1 << 40}}
    for key, value in overrides.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def interleaved(runs: dict[str, tuple[Path, dict]], workers: int, repeats: int) -> dict[str, float]:
    """Median time of each run, the runs taken in turn (so a slow spell of the machine hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (base, cfg) in runs.items():
            times[name].append(run(base, cfg, workers))
    return {name: statistics.median(t) for name, t in times.items()}


def run(base: Path, cfg: dict, workers: int, kill_after: float | None = None) -> float:
    base.mkdir(parents=True, exist_ok=True)
    (base / "curate.yaml").write_text(yaml.safe_dump(cfg))
    command = [sys.executable, "-m", "pipelines.cli", "curate", str(base / "curate.yaml"), "--workers", str(workers),
               "--quiet"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(kill_after)
            raise SystemExit("the run ended before it could be killed; use a larger --mb")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    if kill_after is None and proc.returncode != 0:
        raise SystemExit(err.decode()[-3000:])
    return time.perf_counter() - start


def digests(base: Path) -> list[str]:
    out = json.loads((base / "out" / "manifest.json").read_text())
    return [s["sha256"] for s in out["kept"] + out["rejected"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "big.jsonl"
        n = make_file(data, args.mb)
        print(f"one JSONL file, {args.mb} MB, {n} records, {args.workers} workers, "
              f"median of {args.repeats} runs taken in turn")

        t = interleaved({"whole": (tmp_path / "whole", config(data)),
                         "split": (tmp_path / "split", config(data, extract={"split_bytes": 8 << 20})),
                         "off": (tmp_path / "off", config(data, resume={"enabled": False}))},
                        args.workers, args.repeats)
        whole, split, off = t["whole"], t["split"], t["off"]
        assert digests(tmp_path / "whole") == digests(tmp_path / "split") == digests(tmp_path / "off")
        print(f"  read whole by one worker      : {whole:7.1f} s")
        print(f"  read in 8 MB ranges by all    : {split:7.1f} s   ratio {whole / split:.2f}x (same bytes)")

        print(f"  staging, resume off            : {off:7.1f} s")
        print(f"  resume on (pieces of 500)    : {whole:7.1f} s   cost {100 * (whole / off - 1):+.1f}%")

        killed = run(tmp_path / "crash", config(data), args.workers, kill_after=whole / 2)
        done = sum(pq.ParquetFile(p).metadata.num_rows
                   for p in glob.glob(str(tmp_path / "crash" / "out" / ".work" / "*" / "*" / "piece-*.parquet")))
        again = run(tmp_path / "crash", config(data), args.workers)
        assert digests(tmp_path / "crash") == digests(tmp_path / "whole")
        stats = json.loads((tmp_path / "crash" / "out" / "stats.json").read_text())
        print(f"  killed after {killed:5.1f} s with {done} of {n} records checkpointed")
        print(f"  rerun after the kill          : {again:7.1f} s   ({stats['resumed']} records from checkpoints; "
              f"clean run {whole:.1f} s; same bytes)")


if __name__ == "__main__":
    main()
