"""rs-trafilatura on WCXB's dev split, scored as WCXB scores it, for a side-by-side with bench_extraction.py.

rs-trafilatura (a Rust port of trafilatura with a page-type classifier) ships wheels for CPython 3.12 only, and
refinery runs on 3.11, so it is not a refinery dependency. This script imports only refinery's word measure
(pipelines/text.py, the standard library alone); run it in an environment of rs-trafilatura's own:

    python3.12 -m venv /tmp/rs && /tmp/rs/bin/pip install rs-trafilatura==0.1.1
    /tmp/rs/bin/python benchmarks/bench_rs_trafilatura.py --wcxb ../shared/data/wcxb-dev [--out scores.json]

Each page's raw bytes go to rs_trafilatura.extract_bytes (its own charset detection) with the page's URL and its
defaults. Word F1 is WCXB's evaluate.py measure: the bags of lower-cased \\w+ words, averaged over pages. Time is
CPU seconds in the extraction call, one process.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.text import word_prf  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wcxb", type=Path, required=True, help="WCXB folder with dev/html and dev/ground-truth")
    parser.add_argument("--out", type=Path, help="write each page's F1, page type and rs-trafilatura's type here")
    args = parser.parse_args()
    try:
        import rs_trafilatura
    except ImportError:
        print("rs-trafilatura is not installed here (CPython 3.12 wheels only): see this script's docstring",
              file=sys.stderr)
        return 2
    truth = sorted((args.wcxb / "dev" / "ground-truth").glob("*.json"))
    if not truth:
        print(f"no WCXB ground truth under {args.wcxb / 'dev' / 'ground-truth'}", file=sys.stderr)
        return 2
    scores: dict[str, list[float]] = collections.defaultdict(list)
    pages, seconds = {}, 0.0
    for path in truth:
        data = json.loads(path.read_text())
        gold = data.get("ground_truth")
        if not isinstance(gold, dict):
            continue
        kind = ((data.get("_internal") or {}).get("page_type") or {}).get("primary", "article")
        kind = "collection" if kind == "category" else kind
        raw = gzip.open(args.wcxb / "dev" / "html" / f"{path.stem}.html.gz").read()
        start = time.process_time()
        result = rs_trafilatura.extract_bytes(raw, url=data.get("url"))
        seconds += time.process_time() - start
        f1 = word_prf(result.main_content or "", gold.get("main_content") or "")[2]
        scores[kind].append(f1)
        scores["all"].append(f1)
        pages[path.stem] = {"f1": f1, "type": kind, "predicted_type": result.page_type}
    print(f"rs-trafilatura {getattr(rs_trafilatura, '__version__', '')} on {len(pages)} WCXB dev pages, word F1:")
    for kind in ["all"] + sorted(k for k in scores if k != "all"):
        print(f"  {kind:14s} {len(scores[kind]):5d} pages  {sum(scores[kind]) / len(scores[kind]):.3f}")
    print(f"  {1000 * seconds / max(len(pages), 1):.1f} ms a page (CPU, one process)")
    if args.out:
        args.out.write_text(json.dumps(pages, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
