"""End-to-end curation, refinery against datatrove, on the same WARC input, the same steps and the same cores.

    python benchmarks/bench_curate_vs_datatrove.py --datatrove-python /tmp/dt/bin/python [--copies 8] [--repeats 3]
        [--pages ../shared/data/modern]   # another folder of pages: html/*.html.gz and ground-truth.json

datatrove runs from its own virtual environment (it pins other versions of trafilatura and fastText):

    python3 -m venv /tmp/dt && /tmp/dt/bin/pip install "datatrove[processing]==0.10.1" aiohttp spacy \
        faust-cchardet python-magic warcio orjson lxml_html_clean pyarrow

Input: the 61 real pages of examples/data/web (or the pages of `--pages`), `--copies` times each with a varied URL,
in eight WARC files. The copies are byte-identical payloads, which refinery extracts once per worker
(`extract.repeat_memory`); `--repeat-memory 0` makes it extract every copy, and `--copies 1` gives unique pages.
`--wcxb ../shared/data/wcxb-dev` takes WCXB's 1,497 dev pages instead, one copy each.
Both tools run as their own processes; peak memory is summed over each one's process tree, as RSS (a shared
page counted in every process that maps it) and as PSS (a shared page split between them).
Steps on both sides: trafilatura extraction (no trafilatura-level dedup, 20 s limit), fastText lid.176 language ID
(keep English at 0.65), the Gopher quality filter, MinHash dedup (5-grams, 14 bands x 8 rows), Parquet output;
two worker processes. datatrove's language model is seeded from the lid.176 file refinery already has, so
nothing is downloaded. Prints medians, documents per second, the ratio, kept counts and extraction F1 on the
pages with ground truth.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

from classifiers.langid import lid176_path  # noqa: E402
from pipelines.config.curate import parse_config  # noqa: E402
from pipelines.filter.rules import RULES  # noqa: E402
from pipelines.text import shingle_f1 as f1  # noqa: E402
from pipelines.read.warcpack import write_warc  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_scale import tree_rss  # noqa: E402

WEB = ROOT / "examples" / "data" / "web"
GOPHER_QUALITY = [r.name for r in RULES if r.name.startswith("gopher_") and "dup" not in r.name and "top" not in r.name]

DATATROVE_SCRIPT = '''
def main():
    import os, shutil, sys
    from huggingface_hub import cached_assets_path
    from datatrove.io import strip_protocol
    from datatrove.utils.lid import FT176LID
    d = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    local = os.path.join(d, strip_protocol(FT176LID.MODEL_URL).replace("/", "_"))
    if not os.path.exists(local + ".completed"):
        shutil.copy(sys.argv[3], local)
        open(local + ".completed", "w").close()

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, LanguageFilter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig

    inp, out = sys.argv[1], sys.argv[2]
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    tasks = 2
    LocalPipelineExecutor(pipeline=[
        WarcReader(inp, glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=False, timeout=20.0, deduplicate=False),
        LanguageFilter(languages=["en"], language_threshold=0.65),
        GopherQualityFilter(),
        JsonlWriter(f"{out}/docs"),
        MinhashDedupSignature(output_folder=f"{out}/sigs", config=cfg),
    ], tasks=tasks, workers=2, logging_dir=f"{out}/logs/1").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=f"{out}/sigs", output_folder=f"{out}/buckets",
                                                        config=cfg)],
                          tasks=cfg.num_buckets, workers=2, logging_dir=f"{out}/logs/2").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=f"{out}/buckets", output_folder=f"{out}/remove",
                                                        config=cfg)],
                          tasks=1, workers=1, logging_dir=f"{out}/logs/3").run()
    LocalPipelineExecutor(pipeline=[
        JsonlReader(f"{out}/docs"),
        MinhashDedupFilter(input_folder=f"{out}/remove"),
        ParquetWriter(f"{out}/parquet"),
    ], tasks=tasks, workers=2, logging_dir=f"{out}/logs/4").run()


if __name__ == "__main__":  # datatrove starts worker processes with forkserver
    main()
'''


def build_input(folder: Path, copies: int, pages_dir: Path | None = None,
                wcxb: Path | None = None) -> tuple[int, dict[str, str]]:
    if wcxb is not None:  # WCXB's dev pages; gold: their main content
        from classifiers.page_route import wcxb_pages

        found = [{**p, "url": p["url"] or f"https://wcxb.invalid/{p['name']}"} for p in wcxb_pages(wcxb)]
        pages = [(p["url"], p["raw"]) for p in found]
        truth = {p["name"]: {"url": p["url"], "articleBody": p["gold"]} for p in found}
    else:
        root = pages_dir or WEB
        html = root / "html" if (root / "html").is_dir() else root
        truth = json.loads((root / "ground-truth.json").read_text())
        pages = [(truth[n]["url"], gzip.open(html / f"{n}.html.gz").read()) for n in sorted(truth)
                 if (html / f"{n}.html.gz").exists()]
    records = [(f"{url}{'&' if '?' in url else '?'}copy={c}", body) for c in range(copies) for url, body in pages]
    folder.mkdir(parents=True)
    parts = 8  # a crawl comes in many files: both tools parallelise over them
    for i in range(parts):
        write_warc(records[i::parts], str(folder / f"part-{i}.warc.gz"))
    return len(records), {v["url"]: v["articleBody"] for v in truth.values()}


def gold_of(url: str, gold: dict[str, str]) -> str | None:
    return gold.get(re.sub(r"[?&]copy=\d+$", "", url))


def tree_pss(pid: int) -> int:
    """Proportional set size of a process and all its descendants: each shared page (libraries, copy-on-write
    memory after a fork) counted once over the processes that share it, where RSS counts it in each."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                    children.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    total = 0
    for p in tree:
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:")) * 1024
        except (OSError, StopIteration, ValueError):
            pass
    return total


def timed(command: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """Wall seconds, and peak resident and proportional bytes of the command's whole process tree."""
    t = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(proc.pid)[0])
            peak[1] = max(peak[1], tree_pss(proc.pid))

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"{command[:3]} failed:\n{err[-3000:]}")
    return time.perf_counter() - t, peak[0], peak[1]


def run_refinery(inp: Path, out: Path, repeat_memory: int | None = None,
                 mode: str = "default", fast: bool = False) -> tuple[float, tuple, list[dict]]:
    rules = {r.name: False for r in RULES if r.name not in GOPHER_QUALITY}
    config = {
        "sources": [{"name": "web", "format": "warc", "paths": [str(inp / "*.warc.gz")]}],
        "output": str(out),
        # datatrove extracts no page metadata
        "extract": {"timeout_s": 20, "html": {"metadata": False, "fast": fast}},
        "filters": {"language": {"engine": "fasttext", "keep": ["en"], "min_score": 0.65}, "rules": rules},
        "pii": {"enabled": False},
        "dedup": {"exact": False, "url": False, "minhash": {"bands": 14, "rows": 8, "ngram": 5}},
    }
    if repeat_memory is not None:
        config["extract"]["repeat_memory"] = repeat_memory
    parse_config(config, str(out.parent))  # a mistake here is one line, before anything runs
    path = out.parent / f"{out.name}.yaml"
    path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "pipelines.cli", "curate", str(path), "--workers", "2", "--quiet"]
    elapsed, *peak = timed(command + ([] if mode == "default" else [f"--{mode}"]),
                          {**os.environ, "PYTHONPATH": str(ROOT)})
    rows = [r for p in sorted((out / "kept").glob("*.parquet")) for r in pq.read_table(p, columns=["url", "text"]).to_pylist()]
    return elapsed, peak, rows


def run_datatrove(python: str, inp: Path, out: Path, script: Path) -> tuple[float, tuple, list[dict]]:
    elapsed, *peak = timed([python, str(script), str(inp), str(out), lid176_path()])
    rows = []
    for p in sorted((out / "parquet").glob("*.parquet")):
        for r in pq.read_table(p).to_pylist():
            meta = r.get("metadata") or {}
            rows.append({"url": meta.get("url"), "text": r["text"]})
    return elapsed, peak, rows


def quality(rows: list[dict], gold: dict[str, str]) -> tuple[int, float]:
    scores = [f1(r["text"], g) for r in rows if r.get("url") and (g := gold_of(r["url"], gold))]
    return len(rows), (sum(scores) / len(scores) if scores else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datatrove-python", required=True)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pages", type=Path, help="a folder with html/*.html.gz and ground-truth.json")
    ap.add_argument("--repeat-memory", type=int, help="refinery's extract.repeat_memory (0: extract every copy)")
    ap.add_argument("--wcxb", type=Path, help="WCXB's folder: its dev pages, one copy each, are the input")
    ap.add_argument("--mode", choices=["default", "threads", "processes"], default="default",
                    help="refinery's workers: its default for WARC input (threads), or curate --threads/--processes")
    ap.add_argument("--fast", action="store_true", help="refinery with extract.html.fast (trafilatura's fallback off)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    try:
        n, gold = build_input(work / "input", 1 if args.wcxb else args.copies, args.pages, args.wcxb)
        script = work / "datatrove_job.py"
        script.write_text(DATATROVE_SCRIPT)
        ours, theirs, our_peak, their_peak = [], [], [], []
        for i in range(args.repeats):
            t, peak, r_rows = run_refinery(work / "input", work / f"refinery-{i}", args.repeat_memory,
                                           args.mode, args.fast)
            ours.append(t)
            our_peak.append(peak)
            t, peak, d_rows = run_datatrove(args.datatrove_python, work / "input", work / f"datatrove-{i}", script)
            theirs.append(t)
            their_peak.append(peak)
        mo, mt = statistics.median(ours), statistics.median(theirs)
        copies = 1 if args.wcxb else args.copies
        pages = n // copies
        memory = "" if args.repeat_memory is None else f", refinery extract.repeat_memory={args.repeat_memory}"
        memory += f", refinery workers: {args.mode}" + (", extract.html.fast" if args.fast else "")
        print(f"input: {n} WARC records ({copies} copies of {pages} real pages), 2 worker processes, "
              f"median of {args.repeats}{memory}")
        gib = 2**30
        print(f"  refinery  : {mo:7.2f} s  {n / mo:7.1f} records/s   runs {[round(x, 1) for x in ours]}   "
              f"peak RSS {max(p[0] for p in our_peak) / gib:.2f} GiB, PSS {max(p[1] for p in our_peak) / gib:.2f} GiB")
        print(f"  datatrove : {mt:7.2f} s  {n / mt:7.1f} records/s   runs {[round(x, 1) for x in theirs]}   "
              f"peak RSS {max(p[0] for p in their_peak) / gib:.2f} GiB, PSS {max(p[1] for p in their_peak) / gib:.2f} GiB")
        print(f"  ratio     : refinery {mt / mo:.2f}x datatrove's throughput")
        for name, rows in (("refinery", r_rows), ("datatrove", d_rows)):
            kept, score = quality(rows, gold)
            print(f"  {name:<10}: kept {kept} documents, extraction F1 {score:.4f} against the gold article text")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
