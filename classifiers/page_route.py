"""Train the page router (pipelines/extract/route.py) on pages with gold main text, cross-validated by site.

    python -m classifiers.page_route train --wcxb ../shared/data/wcxb-dev --pages ../shared/data/modern \
        --out classifiers/models/page_route.json [--folds 5] [--processes N] [--cache /tmp/route.pkl]

The line model (which of the region's lines are content: a line is content where its words are a run of the gold
text's) is fitted first and scored out of fold, so that the router learns from the filtered view as it is on pages
the line model has not seen; then the router's choice and quality models, its page-type classifier, and the
gate's type classifier and quality model (which read only what is known before the region is made), and a type
classifier on the markup's features alone (fit_pre) that says, before trafilatura runs, where it runs without
its fallbacks (route.fallbacks). Every page is measured with trafilatura's fallbacks: the router learns from
trafilatura's text at its fullest. On the pages that go without them at run time, the router's choice was checked
on their text as read then (benchmarks/README.md).

Pages: WCXB's dev split (`--wcxb`: dev/html/*.html.gz, dev/ground-truth/*.json, metadata.json for each page's
site) and folders of pages with `ground-truth.json` (`--pages`: url, articleBody, type). Every page goes through
refinery's own extractor (both views, the features the router reads); each view is scored with word F1 against
the gold text. Folds hold whole sites: no site's pages are in both the training and the checking fold. The
report gives, by page type, the F1 of each view alone, of the routed choice (and its spread over resamplings of
the sites) and of the best choice per page, the type classifier's accuracy and how well the confidence tracks the
real F1. The model is then fitted on all pages. Pages are measured, and the folds' models fitted, `--processes`
at a time (all cores by default).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import pickle
import sys
import zlib
from pathlib import Path
from typing import Any, Iterator

TYPES = ("article", "documentation", "service", "forum", "collection", "listing", "product")
QUALITY = dict(rounds=200, depth=3, rate=0.05, min_leaf=15)
LINES = dict(rounds=100, depth=4, rate=0.1, min_leaf=50)
LINES_PER_PAGE = 120  # the line model is fitted on at most this many lines of a page, drawn with a fixed seed
# a line is kept where its score is above this share of the page's best line score (route.filtered_view).
# Cross-validated by site (router 9's rows, refinery's trees), WCXB dev / modern pages, routed: 0.8644 / 0.8345
# against 0.8633 / 0.8246 for one threshold of 0.4 on every page (router 8's cut); with LightGBM standing in,
# on router 8's rows, shares of 0.35, 0.4 and 0.45 gave the filtered view alone 0.8631, 0.8652 and 0.8654 on WCXB dev
THRESHOLD = 0.4
PAGE_TYPE = dict(rounds=100, depth=3, rate=0.1, min_leaf=10)
# the region is kept on an article, or on a page with no line scored as content, where its predicted F1 gain
# over trafilatura is above this (route.route); with router 3's rule, margins of 0, 0.05 and 0.1 gave 0.853,
# 0.851 and 0.847 on WCXB dev, cross-validated by site, the line model scored out of fold
MARGIN = 0.0


def wcxb_pages(folder: Path) -> Iterator[dict[str, Any]]:
    """WCXB dev pages: name, raw HTML bytes, URL, gold text, type (its `category` is `collection`), site."""
    files = json.loads((folder / "metadata.json").read_text())["files"]
    for path in sorted((folder / "dev" / "ground-truth").glob("*.json")):
        data = json.loads(path.read_text())
        gold = data.get("ground_truth")
        if not isinstance(gold, dict):
            continue
        kind = (data.get("_internal") or {}).get("page_type") or {}
        kind = kind.get("primary", "article") if isinstance(kind, dict) else kind
        yield {"name": f"wcxb/{path.stem}", "raw": gzip.open(folder / "dev" / "html" / f"{path.stem}.html.gz").read(),
               "url": data.get("url"), "gold": gold.get("main_content") or "",
               "type": "collection" if kind == "category" else kind,
               "site": (files.get(path.stem) or {}).get("domain") or _host(data.get("url"))}


def folder_pages(folder: Path) -> Iterator[dict[str, Any]]:
    """Pages of a folder with ground-truth.json (url, articleBody, type) and html/NAME.html.gz."""
    truth = json.loads((folder / "ground-truth.json").read_text())
    html = folder / "html" if (folder / "html").is_dir() else folder
    for name, entry in sorted(truth.items()):
        yield {"name": f"{folder.name}/{name}", "raw": gzip.open(html / f"{name}.html.gz").read(),
               "url": entry.get("url"), "gold": entry["articleBody"], "type": entry.get("type", "article"),
               "site": _host(entry.get("url"))}


def _host(url: str | None) -> str:
    from urllib.parse import urlsplit

    host = urlsplit(url or "").hostname or ""
    return host[4:] if host.startswith("www.") else host


def fit_pre(features: list[list[float]], types: list[str]) -> dict[str, Any]:
    """The type classifier on the markup's features alone that says, before trafilatura runs, whether it runs
    its fallbacks (route.fallbacks)."""
    from classifiers.boosted_trees import fit_softmax

    return {"page_type": fit_softmax(features, types, **PAGE_TYPE)}


def measure(page: dict[str, Any]) -> dict[str, Any]:
    """One page through refinery's extractor, trafilatura's fallbacks run on every page: the router's page
    features, the line model's features and labels of the region's lines, and the word F1 of trafilatura's text
    and the region."""
    from pipelines.config.extract import HtmlSettings
    from pipelines.extract import html as extract, page_lines, page_region, route
    from pipelines.read.charsets import decode_html
    from pipelines.text import word_prf

    unwrapped, text, lines, _ = extract.views(decode_html(page["raw"])[0], page["url"], HtmlSettings(), fast=False)
    texts = [line.text for line in lines]
    region = "\n".join(texts)  # the models read it with its repeats; its text has them once
    gold = page_lines.words(page["gold"])
    return {"name": page["name"], "type": page["type"], "site": page["site"], "gold": page["gold"],
            "text": text, "region": region, "lines": texts,
            "x": route.features(unwrapped, text, region), "line_x": page_lines.line_features(lines, text),
            "line_y": [float(bool(w := page_lines.words(t)) and w in gold) for t in texts],
            "f1": {"trafilatura": word_prf(text, page["gold"])[2],
                   "region": word_prf(page_region.text_of(texts), page["gold"])[2]}}


def fit_lines(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The line model, on at most LINES_PER_PAGE lines of each page (its line features, then the page's)."""
    import numpy as np

    from classifiers.boosted_trees import fit_regression

    from pipelines.extract import route

    page = route.PAGE  # the page's features, without the filtered view's
    rng = np.random.default_rng(0)
    X, y = [], []
    for r in rows:
        n = len(r["line_x"])
        for i in (range(n) if n <= LINES_PER_PAGE else sorted(rng.choice(n, LINES_PER_PAGE, replace=False))):
            X.append(r["line_x"][i] + r["x"][:page])
            y.append(r["line_y"][i])
    return fit_regression(X, y, **LINES)


def add_filtered(rows: list[dict[str, Any]], folds: int, processes: int = 1) -> None:
    """Each page's filtered view, from a line model fitted on the folds its site is not in: its word F1 in
    `f1`, the router's features for it appended to `x`. The folds' models are fitted `processes` at a time."""
    fold_of = [fold(r["site"], folds) for r in rows]
    said = {}
    for k, model in enumerate(_by_fold(fit_lines, rows, fold_of, folds, processes)):
        for i, (r, f) in enumerate(zip(rows, fold_of)):
            if f == k:
                said[i] = filtered_by(r, model)
    for i, r in enumerate(rows):  # the line models read the page's features without them
        r["x"] = r["x"] + said[i]


def filtered_by(row: dict[str, Any], lines: dict[str, Any]) -> list[float]:
    """A measured page's filtered view by the line model `lines`: its word F1 put in the row's `f1`, the
    router's features for it (FILTERED_NAMES) returned."""
    from pipelines.extract import route
    from pipelines.text import word_prf

    scores = page_lines_scores(row, lines)
    filtered, said = route.filtered_view(row["text"], row["region"], row["lines"], scores, THRESHOLD)
    row["f1"]["filtered"] = word_prf(filtered, row["gold"])[2]
    return said


def page_lines_scores(row: dict[str, Any], lines: dict[str, Any]) -> list[float]:
    """The line model's score of each of a measured page's lines."""
    import numpy as np

    from classifiers.boosted_trees import predict_many
    from pipelines.extract import route

    if not row["line_x"]:
        return []
    page = row["x"][:route.PAGE]
    return [out[0] for out in predict_many(lines, np.array([x + page for x in row["line_x"]]))]


def fold(site: str, folds: int, salt: str = "") -> int:
    """The fold a site's pages are in: the CRC-32 of its name (and `salt`, for another split), mod `folds`."""
    return zlib.crc32((site + salt).encode()) % folds


def measure_all(pages: list[dict[str, Any]], processes: int) -> list[dict[str, Any]]:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.map(measure, pages, chunksize=4)


def fit(rows: list[dict[str, Any]], lines: dict[str, Any] | None = None) -> dict[str, Any]:
    """The router's models (rows with their filtered view: add_filtered), the line model (`lines` where it is
    fitted on these rows already) and the pre classifier (on the markup features the rows begin with)."""
    from pipelines.extract import page_lines
    from pipelines.extract.page_features import NAMES as PAGE_NAMES

    return fit_router(rows) | {"lines": lines or fit_lines(rows), "relative_threshold": THRESHOLD,
                               "line_names": list(page_lines.NAMES),
                               "pre": fit_pre([r["x"][:len(PAGE_NAMES)] for r in rows], [r["type"] for r in rows])}


def fit_router(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from classifiers.boosted_trees import fit_regression, fit_softmax
    from pipelines.extract import route

    # the filtered view's models read its features; the others what is known before the lines are scored
    X = {view: [r["x"] if view == "filtered" else r["x"][:route.PAGE] for r in rows] for view in route.VIEWS}
    gated = [[r["x"][i] for i in route.GATE] for r in rows]
    return {
        "names": list(route.NAMES),
        "margin": MARGIN,
        # how much better each other view's F1 is than trafilatura's: the choice (+0.004 F1 over comparing the
        # quality predictions, cross-validated by site on WCXB dev and the modern pages, with two views)
        "choice": {view: fit_regression(X[view], [r["f1"][view] - r["f1"]["trafilatura"] for r in rows], **QUALITY)
                   for view in route.VIEWS[1:]},
        "quality": {view: fit_regression(X[view], [r["f1"][view] for r in rows], **QUALITY) for view in route.VIEWS},
        "page_type": fit_softmax(X["region"], [r["type"] for r in rows], **PAGE_TYPE),
        # the gate's own: read before the region is made (route.gate)
        "gate": {"page_type": fit_softmax(gated, [r["type"] for r in rows], **PAGE_TYPE),
                 "quality": fit_regression(gated, [r["f1"]["trafilatura"] for r in rows], **QUALITY)},
    }


def cross_validate(rows: list[dict[str, Any]], folds: int, processes: int = 1) -> list[dict[str, Any]]:
    """Each page routed by a model fitted on the folds its site is not in: its row with `routed`."""
    from pipelines.extract import route

    fold_of = [fold(r["site"], folds) for r in rows]
    out = []
    for k, model in enumerate(_by_fold(fit_router, rows, fold_of, folds, processes)):
        for r, f in zip(rows, fold_of):
            if f == k:
                out.append({**r, "routed": route.route(r["x"], model)})
    return out


_SHARED: list[Any] = []  # what the forked fitting processes read: the fitting function, the rows, their folds


def _fit_without(k: int) -> Any:
    fitting, rows, fold_of = _SHARED
    return fitting([r for r, f in zip(rows, fold_of) if f != k])


def _by_fold(fitting: Any, rows: list[dict[str, Any]], fold_of: list[int], folds: int, processes: int) -> list[Any]:
    """`fitting` of the rows outside each fold, in the folds' order, `processes` folds at a time (forked: the
    rows are not copied to the processes)."""
    import multiprocessing

    _SHARED[:] = [fitting, rows, fold_of]
    try:
        if processes <= 1:
            return [_fit_without(k) for k in range(folds)]
        with multiprocessing.get_context("fork").Pool(min(processes, folds)) as pool:
            return pool.map(_fit_without, range(folds), chunksize=1)
    finally:
        _SHARED.clear()


def report(checked: list[dict[str, Any]]) -> dict[str, Any]:
    """F1 by type of each view, the routed choice and the best per page; type accuracy; confidence tracking; and
    how far the routed F1 could move with other sites of the same kind (routed_sd: site_spread)."""
    by = collections.defaultdict(lambda: collections.defaultdict(list))
    sites = collections.defaultdict(list)
    for r in checked:
        routed = r["routed"]
        values = {**r["f1"], "routed": r["f1"][routed.view], "best": max(r["f1"].values())}
        for group in ("all", r["type"], r["name"].split("/")[0]):
            for name, v in values.items():
                by[group][name].append(v)
            by[group]["type_ok"].append(float(routed.page_type == r["type"]))
            by[group]["abs_err"].append(abs(routed.confidence - r["f1"][routed.view]))
            sites[group].append((r["site"], values["routed"]))
    return {group: {name: round(sum(v) / len(v), 4) for name, v in values.items()}
            | {"pages": len(values["routed"]), "routed_sd": round(site_spread(sites[group]), 4)}
            for group, values in by.items()}


def site_spread(scores: list[tuple[str, float]], draws: int = 2000, seed: int = 0) -> float:
    """The standard deviation of the mean of `scores` ((site, F1) pairs) over resamplings of its sites, drawn with
    replacement (a bootstrap by site): how much the mean says about pages of other sites. On WCXB dev's 1,497
    pages, about 0.007; on a page type's 90-165 pages, 0.013-0.036."""
    import numpy as np

    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for site, score in scores:
        totals[site][0] += score
        totals[site][1] += 1
    if len(totals) < 2:
        return 0.0
    summed, pages = np.array(list(totals.values())).T
    picks = np.random.default_rng(seed).integers(0, len(summed), (draws, len(summed)))
    return float((summed[picks].sum(axis=1) / pages[picks].sum(axis=1)).std())


def print_report(summary: dict[str, Any]) -> None:
    groups = ["all"] + [t for t in TYPES if t in summary] + sorted(set(summary) - set(TYPES) - {"all"})
    print(f"{'':14}" + "".join(f"{g[:9]:>10}" for g in groups))
    for name in ("pages", "trafilatura", "region", "filtered", "routed", "routed_sd", "best", "type_ok", "abs_err"):
        print(f"{name:14}" + "".join(f"{summary[g][name]:>10.3f}" if name != "pages" else f"{summary[g][name]:>10}"
                                     for g in groups))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.page_route", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="measure the pages, cross-validate by site, fit and write the model")
    train.add_argument("--wcxb", type=Path, action="append", default=[], help="a WCXB folder (its dev split)")
    train.add_argument("--pages", type=Path, action="append", default=[], help="a folder with ground-truth.json")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--folds", type=int, default=5)
    train.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    train.add_argument("--cache", type=Path, help="measured pages are kept here and read back on the next run")
    args = parser.parse_args(argv)
    if not args.wcxb and not args.pages:
        parser.error("give --wcxb or --pages (pages with gold text to train on)")
    for folder in args.wcxb + args.pages:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    if args.cache and args.cache.exists():
        rows = pickle.loads(args.cache.read_bytes())
    else:
        pages = [p for f in args.wcxb for p in wcxb_pages(f)] + [p for f in args.pages for p in folder_pages(f)]
        rows = measure_all(pages, args.processes)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(rows))
    add_filtered(rows, args.folds, args.processes)
    summary = report(cross_validate(rows, args.folds, args.processes))
    print(f"{len(rows)} pages from {len({r['site'] for r in rows})} sites, {args.folds} folds by site")
    print_report(summary)
    model = fit(rows)
    model["trained_on"] = {"pages": len(rows), "sites": len({r["site"] for r in rows}),
                           "sources": [str(f.name) for f in args.wcxb + args.pages], "cross_validated": summary}
    args.out.write_text(json.dumps(model, separators=(",", ":")))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
