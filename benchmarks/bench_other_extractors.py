"""Other extractors on WCXB's dev split, scored as WCXB scores it, for a side-by-side with bench_extraction.py.

Neither is a refinery dependency; this script imports only refinery's word measure (pipelines/text.py, the
standard library alone), so each runs in an environment of its own:

- rs-trafilatura (a Rust port of trafilatura with a page-type classifier) ships wheels for CPython 3.12 only,
  and refinery runs on 3.11:

    python3.12 -m venv /tmp/rs && /tmp/rs/bin/pip install rs-trafilatura==0.1.1
    /tmp/rs/bin/python benchmarks/bench_other_extractors.py rs-trafilatura --wcxb ../shared/data/wcxb-dev

- resiliparse (HTML parsing and main-content text in C++, wheels for 3.11):

    python3.11 -m venv /tmp/rp && /tmp/rp/bin/pip install resiliparse==2.0.1
    /tmp/rp/bin/python benchmarks/bench_other_extractors.py resiliparse --wcxb ../shared/data/wcxb-dev

Each page's raw bytes go to the extractor (its own charset detection; rs-trafilatura with the page's URL), with
its defaults for main content (resiliparse: `main_content=True`, no alt texts, link targets or list bullets).
Word F1 is WCXB's evaluate.py measure: the bags of lower-cased \\w+ words, averaged over pages. Time is CPU
seconds in the extraction call (parsing included), one process. `--out` writes each page's F1 and type.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.text import word_prf  # noqa: E402

INSTALL = {"rs-trafilatura": "rs-trafilatura==0.1.1 (CPython 3.12 wheels only)", "resiliparse": "resiliparse==2.0.1"}
Extractor = Callable[[bytes, "str | None"], "tuple[str, str | None]"]  # raw page, URL -> text, its page type


def rs_trafilatura() -> tuple[Extractor, str]:
    import rs_trafilatura

    def extract(raw: bytes, url: str | None) -> tuple[str, str | None]:
        result = rs_trafilatura.extract_bytes(raw, url=url)
        return result.main_content or "", result.page_type

    return extract, getattr(rs_trafilatura, "__version__", "")


def resiliparse() -> tuple[Extractor, str]:
    from importlib.metadata import version

    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    def extract(raw: bytes, url: str | None) -> tuple[str, str | None]:
        tree = HTMLTree.parse_from_bytes(raw)
        return extract_plain_text(tree, main_content=True, alt_texts=False, links=False, list_bullets=False), None

    return extract, version("resiliparse")


EXTRACTORS = {"rs-trafilatura": rs_trafilatura, "resiliparse": resiliparse}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extractor", choices=sorted(EXTRACTORS))
    parser.add_argument("--wcxb", type=Path, required=True, help="WCXB folder with dev/html and dev/ground-truth")
    parser.add_argument("--out", type=Path, help="write each page's F1, page type and the extractor's type here")
    args = parser.parse_args()
    try:
        extract, version = EXTRACTORS[args.extractor]()
    except ImportError:
        print(f"{args.extractor} is not installed here: pip install {INSTALL[args.extractor]} (see this script's "
              "docstring)", file=sys.stderr)
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
        text, predicted = extract(raw, data.get("url"))
        seconds += time.process_time() - start
        f1 = word_prf(text, gold.get("main_content") or "")[2]
        scores[kind].append(f1)
        scores["all"].append(f1)
        pages[path.stem] = {"f1": f1, "type": kind, "predicted_type": predicted}
    print(f"{args.extractor} {version} on {len(pages)} WCXB dev pages, word F1:")
    for kind in ["all"] + sorted(k for k in scores if k != "all"):
        print(f"  {kind:14s} {len(scores[kind]):5d} pages  {sum(scores[kind]) / len(scores[kind]):.3f}")
    print(f"  {1000 * seconds / max(len(pages), 1):.1f} ms a page (CPU, one process)")
    if args.out:
        args.out.write_text(json.dumps(pages, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
