"""HTML extraction quality and speed, per page type: trafilatura alone against refinery's settings.

Scores the text each extracts from each page against the page's gold main text (word 4-gram shingle
precision, recall and F1, as tests/test_extraction_quality.py does) on two sets:
  modern: web pages of seven types with gold text (default ../shared/data/modern, or tests/data/modern, the
          committed subset);
  news:   the 61 news pages of examples/data/web;
and, where it is on this machine, on WCXB's dev split (1,497 pages of seven types, ../shared/data/wcxb-dev)
with WCXB's own measure: precision, recall and F1 of the bags of lower-cased words, averaged over pages.
"trafilatura alone" is trafilatura.extract(html, url=url) with its defaults; "refinery default" is
extract_html with refinery's defaults (the router, the page's declared metadata). Every setting runs on every
page in the same process, page by page: a warm-up call, then calls timed in CPU seconds in the order A B C C B A
(a machine whose speed drifts over minutes then weighs on every setting alike). The shipped router was fitted
on the modern pages and WCXB's dev split, so refinery's figures there are in-sample (as the published figures of
extractors tuned on WCXB dev are); benchmarks/bench_extraction_cv.py gives them cross-validated by site. The news
pages were never trained on.

    python benchmarks/bench_extraction.py                 # refinery's defaults against trafilatura alone
    python benchmarks/bench_extraction.py --modern DIR --limit 100
    python benchmarks/bench_extraction.py --only wcxb --fast --router-off
"""
from __future__ import annotations

import argparse
import collections
import gzip
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifiers.page_route import wcxb_pages  # noqa: E402
from pipelines.config.extract import HtmlSettings  # noqa: E402
from pipelines.extract.html import extract_html  # noqa: E402
from pipelines.read.charsets import decode_html  # noqa: E402
from pipelines.text import shingle_prf, word_prf  # noqa: E402

def load_set(folder: Path, page_dir: str, default_type: str, limit: int) -> list[dict]:
    truth = json.loads((folder / "ground-truth.json").read_text())
    pages = []
    for name in sorted(truth)[: limit or None]:
        raw = gzip.open(folder / page_dir / f"{name}.html.gz").read()
        html, _ = decode_html(raw)
        entry = truth[name]
        pages.append({"name": name, "html": html, "url": entry.get("url"), "gold": entry["articleBody"],
                      "type": entry.get("type", default_type)})
    return pages


def load_wcxb(folder: Path, limit: int) -> list[dict]:
    """WCXB's dev pages: gold main text, URL and page type (its `category` pages are `collection`)."""
    pages = []
    for page in itertools.islice(wcxb_pages(folder), limit or None):
        html, _ = decode_html(page["raw"])
        pages.append({"name": page["name"], "html": html, "url": page["url"], "gold": page["gold"], "type": page["type"]})
    return pages


Extractor = Callable[[str, "str | None"], dict]


def refinery(settings: HtmlSettings) -> Extractor:
    return lambda html, url: extract_html(html, url, settings)


def trafilatura_alone(html: str, url: str | None) -> dict:
    """trafilatura 2.3.1 as its users call it: extract() with its defaults (no metadata, comments kept)."""
    import trafilatura

    return {"text": trafilatura.extract(html, url=url) or ""}


def run(pages: list[dict], settings: dict[str, Extractor], score: Any = shingle_prf) -> dict[str, dict]:
    """Scores and CPU time per setting, page by page: each page is extracted once untimed (trafilatura and
    htmldate keep caches across calls, so no setting's timed call may be the first to see a page), then by the
    settings in the order A B .. B A. A page's settings run a few hundred milliseconds apart, so a machine whose
    speed drifts over minutes weighs on every setting alike."""
    labels = list(settings)
    seconds = dict.fromkeys(labels, 0.0)
    results: dict[str, list[dict]] = {label: [] for label in labels}
    for page in pages:
        settings[labels[0]](page["html"], page["url"])
        first: dict[str, dict] = {}
        for label in labels + labels[::-1]:
            start = time.process_time()
            result = settings[label](page["html"], page["url"])
            seconds[label] += time.process_time() - start
            first.setdefault(label, result)
        for label in labels:
            results[label].append(first[label])
    out = {}
    for label in labels:
        scores = collections.defaultdict(list)
        for page, result in zip(pages, results[label]):
            prf = score(result["text"], page["gold"])
            scores[page["type"]].append(prf)
            scores["all"].append(prf)
        out[label] = {"scores": scores, "seconds": seconds[label] / 2,
                      "region": sum(r.get("html_text") == "region" for r in results[label]),
                      "filtered": sum(r.get("html_text") == "filtered" for r in results[label])}
    return out


def mean(values: list[tuple[float, float, float]], i: int) -> float:
    return sum(v[i] for v in values) / len(values)


def report(name: str, pages: list[dict], results: dict[str, dict]) -> None:
    types = sorted({p["type"] for p in pages})
    counts = collections.Counter(p["type"] for p in pages)
    print(f"\n{name}: {len(pages)} pages")
    head = f"{'settings':<22}{'all F1':>8}{'P':>7}{'R':>7}{'pages/s':>9}{'region':>8}{'filter':>7}  " + "  ".join(
        f"{t[:11]:>11}" for t in types)
    print(head)
    print(" " * 64 + "  ".join(f"{'(' + str(counts[t]) + ')':>11}" for t in types))
    for label, res in results.items():
        s = res["scores"]
        print(f"{label:<22}{mean(s['all'], 2):>8.3f}{mean(s['all'], 0):>7.3f}{mean(s['all'], 1):>7.3f}"
              f"{len(pages) / res['seconds']:>9.1f}{res['region']:>8}{res['filtered']:>7}  "
              + "  ".join(f"{mean(s[t], 2):>11.3f}" for t in types))
    base, *others = results
    for label in others:
        print(f"time per page, {label} / {base}: {results[label]['seconds'] / results[base]['seconds']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = ROOT.parent / "shared" / "data" / "modern"
    committed = ROOT / "tests" / "data" / "modern"
    parser.add_argument("--modern", type=Path, default=shared if shared.exists() else committed)
    parser.add_argument("--news", type=Path, default=ROOT / "examples" / "data" / "web")
    wcxb = ROOT.parent / "shared" / "data" / "wcxb-dev"
    parser.add_argument("--wcxb", type=Path, default=wcxb if wcxb.exists() else None,
                        help="WCXB's folder (its dev split is scored); absent: not scored")
    parser.add_argument("--only", choices=["modern", "news", "wcxb"], help="score one set only")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N pages of each set")
    parser.add_argument("--fast", action="store_true", help="also refinery with extract.html.fast (no fallback)")
    parser.add_argument("--router-off", action="store_true", help="also refinery with extract.html.route false")
    args = parser.parse_args()
    defaults = HtmlSettings()
    settings = {"trafilatura alone": trafilatura_alone, "refinery default": refinery(defaults)}
    if args.fast:
        settings["refinery fast"] = refinery(defaults.model_copy(update={"fast": True}))
    if args.router_off:
        settings["refinery, router off"] = refinery(defaults.model_copy(update={"route": False}))
    if args.only in (None, "modern"):
        modern = load_set(args.modern, "html", "page", args.limit)
        report(f"modern ({args.modern})", modern, run(modern, settings))
    if args.only in (None, "news"):
        news = load_set(args.news, ".", "news", args.limit)
        report(f"news ({args.news})", news, run(news, settings))
    if args.only in (None, "wcxb") and args.wcxb is not None:
        pages = load_wcxb(args.wcxb, args.limit)
        report(f"WCXB dev, word F1 ({args.wcxb})", pages, run(pages, settings, word_prf))
    if args.only in (None, "modern", "wcxb"):
        print("\n(refinery's router was fitted on the modern and WCXB pages: in-sample; cross-validated by site: "
              "benchmarks/bench_extraction_cv.py)")


if __name__ == "__main__":
    main()
