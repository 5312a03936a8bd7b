"""Reading WARC.gz files in byte ranges: the range boundary checks with and without the members this process
inflated before (pipelines/read/splits.py), side by side in one process.

    python benchmarks/bench_warc_ranges.py [--wcxb ../shared/data/wcxb-dev] [--repeats 3]

Input: the 61 pages of examples/data/web (or WCXB's 1,497 dev pages with --wcxb) in eight WARC.gz files, cut into
ranges as curate cuts them. Each run reads every range in order, as one worker thread would; "inflate again"
forgets every member after checking it, "known" is the default. Prints CPU seconds (median), the ratio and
whether both read the same rows.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_curate_vs_datatrove import build_input  # noqa: E402
from pipelines.config.curate import parse_config  # noqa: E402
from pipelines.jobs.curate import list_inputs, range_bytes  # noqa: E402
from pipelines.read import splits  # noqa: E402
from pipelines.read.readers import read_file  # noqa: E402
from pipelines.read.splits import plan_units  # noqa: E402


def read_all(cfg, units) -> tuple[float, list[str]]:
    started = time.process_time()
    ids = [row["id"] for u in units for row in read_file(cfg.sources[0], u.path, u.path, cfg.extract, u.start, u.end)]
    return time.process_time() - started, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wcxb", type=Path, help="WCXB's dev split folder (1,497 pages) instead of the 61 news pages")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        n, _ = build_input(Path(tmp) / "in", 1, None, args.wcxb)
        cfg = parse_config({"sources": [{"name": "web", "format": "warc", "paths": [f"{tmp}/in/*.warc.gz"]}],
                            "output": f"{tmp}/out"}, tmp)
        files = list_inputs(cfg)
        units = plan_units(files, {"web": "warc"}, range_bytes(files, cfg.extract.split_bytes))
        kept = splits._MEMBERS
        times: dict[str, list[float]] = {"inflate again": [], "known": []}
        rows: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for name, held in (("inflate again", 0), ("known", kept.held)):
                splits._MEMBERS = splits._Known(held)  # a fresh process's memory of members
                seconds, rows[name] = read_all(cfg, units)
                times[name].append(seconds)
        splits._MEMBERS = kept
    print(f"input: {n} WARC records in {len(files)} files, {len(units)} ranges, median of {args.repeats}")
    for name, runs in times.items():
        print(f"  {name:13s}: {statistics.median(runs):6.2f} s CPU   runs {[round(t, 2) for t in runs]}")
    ratio = statistics.median(times["inflate again"]) / statistics.median(times["known"])
    print(f"  ratio        : {ratio:.2f}x faster; same rows: {rows['inflate again'] == rows['known']}")


if __name__ == "__main__":
    main()
