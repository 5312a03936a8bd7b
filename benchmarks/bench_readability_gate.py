"""trafilatura's text on refinery's HTML path, with and without the readability gate
(pipelines/extract/readability_gate.py), side by side in one process: each page extracted both ways in turn.

    python benchmarks/bench_readability_gate.py [--wcxb ../shared/data/wcxb-dev] [--every 3]

Input: WCXB's dev pages (every n-th). The router is off (trafilatura's text alone, from refinery's one parse), so
the figures are trafilatura's cost per page. Prints CPU milliseconds per page both ways, the ratio, how many
readability runs the gate left out, and whether every page's output was the same.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_extraction import load_wcxb  # noqa: E402
from pipelines.extract import html as html_path  # noqa: E402
from pipelines.extract import readability_gate  # noqa: E402

SETTINGS = SimpleNamespace(route=False, metadata=False, metadata_search=False, include_comments=False,
                           include_tables=True, favor_precision=False, favor_recall=False, fast=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wcxb", type=Path, default=ROOT.parent / "shared" / "data" / "wcxb-dev")
    ap.add_argument("--every", type=int, default=3, help="every n-th page (1: all 1,497)")
    args = ap.parse_args()
    pages = load_wcxb(args.wcxb, 0)[:: args.every]
    gated = readability_gate.installed
    decided: list[bool] = []
    decide = readability_gate.cannot_win

    def counted(*a):
        decided.append(decide(*a))
        return decided[-1]

    readability_gate.cannot_win = counted
    cpu = {False: 0.0, True: 0.0}
    same = True
    for page in pages:
        outputs = {}
        for gate in (False, True):
            readability_gate.installed = gated if gate else contextlib.nullcontext
            started = time.process_time()
            outputs[gate] = html_path.extract_html(page["html"], page["url"], SETTINGS)
            cpu[gate] += time.process_time() - started
        same &= outputs[False] == outputs[True]
    n = len(pages)
    print(f"input: {n} WCXB dev pages (every {args.every}), trafilatura's text on refinery's HTML path")
    print(f"  readability always : {cpu[False] / n * 1000:6.1f} ms CPU a page")
    print(f"  gated              : {cpu[True] / n * 1000:6.1f} ms CPU a page")
    print(f"  ratio              : {cpu[False] / cpu[True]:.2f}x less CPU; readability left out on "
          f"{sum(decided)} of {len(decided)} runs; same output on every page: {same}")


if __name__ == "__main__":
    main()
