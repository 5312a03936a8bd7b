"""trafilatura with refinery's walks in place of its `re:test` expressions (pipelines/extract/xpath_walk.py)
against trafilatura as shipped, on the same parsed pages in the same process: whether the text is the same on
every page, and the time per page of each, under trafilatura's settings as refinery calls it.

    python benchmarks/bench_xpath_walk.py [--wcxb ../shared/data/wcxb-dev] [--pages ../shared/data/modern]
        [--every 1]

Without WCXB or the modern pages on this machine it reads the committed subsets (tests/data). The two run in
turn on each page (shipped first on even pages, walks first on odd ones), so a slower stretch of the machine
weighs on both.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from pipelines.config.extract import HtmlSettings  # noqa: E402
from pipelines.extract import html as html_path  # noqa: E402
from pipelines.extract import xpath_walk  # noqa: E402
from pipelines.read.charsets import decode_html  # noqa: E402

SETTINGS = {"default": {}, "favor_precision": {"favor_precision": True},
            "favor_recall + comments": {"favor_recall": True, "include_comments": True}, "fast": {"fast": True}}


def pages(wcxb: Path | None, modern: Path | None) -> list[str]:
    files = sorted((wcxb / "dev" / "html").glob("*.html.gz")) if wcxb and (wcxb / "dev" / "html").is_dir() else []
    if not files:
        files = sorted((ROOT / "tests" / "data" / "wcxb").rglob("*.html.gz"))
    folder = modern / "html" if modern and (modern / "html").is_dir() else ROOT / "tests" / "data" / "modern" / "html"
    files += sorted(folder.glob("*.html.gz")) + sorted((ROOT / "examples" / "data" / "web").glob("*.html.gz"))
    out = []
    for f in files:
        raw = gzip.open(f).read() if f.suffix == ".gz" else f.read_bytes()
        out.append(html_path.unwrap_lines(decode_html(raw)[0]))
    return out


def shipped(tree: object, s: SimpleNamespace) -> str:
    result = trafilatura.bare_extraction(tree, with_metadata=False, deduplicate=False,
                                         include_comments=s.include_comments, include_tables=s.include_tables,
                                         favor_precision=s.favor_precision, favor_recall=s.favor_recall, fast=s.fast)
    return (result.text if result is not None else "") or ""


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    ap = argparse.ArgumentParser()
    ap.add_argument("--wcxb", type=Path, default=shared / "wcxb-dev")
    ap.add_argument("--pages", type=Path, default=shared / "modern")
    ap.add_argument("--every", type=int, default=1, help="take every Nth page")
    args = ap.parse_args()
    htmls = pages(args.wcxb, args.pages)[::args.every]
    print(f"{len(htmls)} pages; {len(xpath_walk.swaps())} of trafilatura's expressions replaced by walks")
    print(f"{'settings':<26}{'different':>10}{'shipped ms':>12}{'walks ms':>10}{'ratio':>8}")
    for name, options in SETTINGS.items():
        s = SimpleNamespace(**{**HtmlSettings(metadata=False).model_dump(), **options})
        spent = {"shipped": 0.0, "walks": 0.0}
        different = 0
        for i, html in enumerate(htmls):
            texts = {}
            for kind in (("shipped", "walks") if i % 2 == 0 else ("walks", "shipped")):
                tree = html_path._parse(html)
                start = time.perf_counter()
                if kind == "walks":
                    texts[kind] = html_path._trafilatura(html if tree is None else tree, None, s, s.fast)
                else:
                    texts[kind] = shipped(html if tree is None else tree, s)
                spent[kind] += time.perf_counter() - start
            different += texts["walks"] != texts["shipped"]
        a, b = (spent[k] / len(htmls) * 1000 for k in ("shipped", "walks"))
        print(f"{name:<26}{different:>10}{a:>12.1f}{b:>10.1f}{b / a:>7.2f}x")


if __name__ == "__main__":
    main()
