"""refinery's HTML extraction cross-validated by site, beside the shipped model on the same pages.

    python benchmarks/bench_extraction_cv.py --wcxb ../shared/data/wcxb-dev --pages ../shared/data/modern \
        [--folds 5] [--salt ''] [--processes 2] [--cache /tmp/rows.pkl] [--other rs-trafilatura.json]

The shipped router (classifiers/models/page_route.json) was fitted on every page it is scored on here, so
`bench_extraction.py`'s figures on those pages are in-sample. This script gives the figure to expect on sites the
models never saw: the pages' sites are split into folds (the CRC-32 of the site's name and `--salt`, as
`python -m classifiers.page_route train` splits them); for each fold the whole model (the line model, the
router's models fitted on filtered views scored by line models that did not see their own fold either, the gate
and the pre classifier) is fitted on the other folds' pages exactly as `page_route train` fits the shipped one,
and each page of the fold is extracted as at run time, with that model (`extract.html.route_model`). Every page
is also extracted with the shipped model. `--other` adds another extractor's per-page word F1, as
`bench_other_extractors.py --out` writes it, on the same pages and measure. Word F1 is WCXB's measure
(pipelines/text.py word_prf); `sd` is the standard deviation of the cross-validated mean over resamplings of the
sites (page_route.site_spread).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import multiprocessing
import pickle
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifiers import page_route  # noqa: E402

_ROWS: list[dict[str, Any]] = []  # the measured pages, shared with the forked workers
_FOLD: list[int] = []


def _fit_lines(left_out: frozenset[int]) -> tuple[frozenset[int], dict[str, Any]]:
    return left_out, page_route.fit_lines([r for r, f in zip(_ROWS, _FOLD) if f not in left_out])


def _fit_fold(job: tuple[int, dict[frozenset[int], dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """The whole model for fold k, fitted on the other folds as `page_route train` fits the shipped one: each
    training page's filtered view from a line model that saw neither fold k nor the page's own fold."""
    k, lines = job
    train = []
    for r, f in zip(_ROWS, _FOLD):
        if f != k:
            row = {**r, "f1": dict(r["f1"])}
            row["x"] = r["x"] + page_route.filtered_by(row, lines[frozenset({k, f})])
            train.append(row)
    return k, page_route.fit(train, lines=lines[frozenset({k})])


def _extract(job: tuple[dict[str, Any], str | None]) -> float:
    from pipelines.config.extract import HtmlSettings
    from pipelines.extract.html import extract_html
    from pipelines.read.charsets import decode_html
    from pipelines.text import word_prf

    page, model = job
    settings = SimpleNamespace(**{**HtmlSettings().model_dump(), "route_model": model})
    text = extract_html(decode_html(page["raw"])[0], page["url"], settings)["text"]
    return word_prf(text, page["gold"])[2]


def _drafted(folder: Path) -> set[str]:
    """WCXB pages whose gold text began as an rs-trafilatura draft (their ground truth's `_internal.source`)."""
    out = set()
    for path in (folder / "dev" / "ground-truth").glob("*.json"):
        if (json.loads(path.read_text()).get("_internal") or {}).get("source") == "rs-trafilatura-draft":
            out.add(f"wcxb/{path.stem}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wcxb", type=Path, action="append", default=[], help="a WCXB folder (its dev split)")
    parser.add_argument("--pages", type=Path, action="append", default=[], help="a folder with ground-truth.json")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--salt", default="", help="another split of the sites into folds")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="measured pages (and, beside them, each split's fold models) are "
                        "kept here and read back on the next run")
    parser.add_argument("--other", type=Path, help="another extractor's per-page F1 (bench_other_extractors --out)")
    args = parser.parse_args()
    if not args.wcxb and not args.pages:
        parser.error("give --wcxb or --pages (pages with gold text)")
    for folder in args.wcxb + args.pages:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    start = time.time()
    pages = [p for f in args.wcxb for p in page_route.wcxb_pages(f)] + [
        p for f in args.pages for p in page_route.folder_pages(f)]
    if args.cache and args.cache.exists():
        rows = pickle.loads(args.cache.read_bytes())
    else:
        rows = page_route.measure_all(pages, args.processes)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(rows))
    if [r["name"] for r in rows] != [p["name"] for p in pages]:
        parser.error(f"{args.cache}: measured other pages; remove it")
    _ROWS[:] = rows
    _FOLD[:] = [page_route.fold(r["site"], args.folds, args.salt) for r in rows]
    print(f"{len(rows)} pages from {len({r['site'] for r in rows})} sites, {args.folds} folds by site "
          f"(salt {args.salt!r}); measured in {time.time() - start:.0f} s", flush=True)

    fork = multiprocessing.get_context("fork")
    kept = args.cache.with_name(f"{args.cache.name}.folds-{args.folds}-{args.salt}") if args.cache else None
    if kept and kept.exists():
        models = pickle.loads(kept.read_bytes())
    else:
        left_out = [frozenset({k}) for k in range(args.folds)] + [
            frozenset(pair) for pair in itertools.combinations(range(args.folds), 2)]
        with fork.Pool(args.processes) as pool:
            lines = dict(pool.imap_unordered(_fit_lines, left_out))
            print(f"{len(lines)} line models in {time.time() - start:.0f} s", flush=True)
            models = dict(pool.imap_unordered(_fit_fold, [(k, lines) for k in range(args.folds)]))
        if kept:  # fitting takes most of the run: the next run with this cache, folds and salt reads them back
            kept.write_bytes(pickle.dumps(models))
    print(f"{args.folds} fold models in {time.time() - start:.0f} s", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k in range(args.folds):
            paths.append(f"{folder}/fold{k}.json")
            Path(paths[-1]).write_text(json.dumps(models[k]))
        jobs = [(p, paths[f]) for p, f in zip(pages, _FOLD)] + [(p, None) for p in pages]
        with fork.Pool(args.processes) as pool:
            scores = pool.map(_extract, jobs, chunksize=4)
    crossed, shipped = scores[:len(pages)], scores[len(pages):]
    print(f"extracted twice in {time.time() - start:.0f} s\n", flush=True)
    report(pages, crossed, shipped, args)
    return 0


def report(pages: list[dict[str, Any]], crossed: list[float], shipped: list[float], args: Any) -> None:
    other = json.loads(args.other.read_text()) if args.other else {}
    drafted = set().union(*(_drafted(f) for f in args.wcxb)) if args.wcxb else set()
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, p in enumerate(pages):
        kind = p["name"].split("/")[0]
        names = [kind] + ([f"  {p['type']}"] if kind == "wcxb" else [])
        if kind == "wcxb":
            names.append("  gold drafted by rs-trafilatura" if p["name"] in drafted else "  other gold")
        for name in names:
            groups[name].append(i)
    order = ["wcxb"] + [f"  {t}" for t in page_route.TYPES] + ["  gold drafted by rs-trafilatura", "  other gold"]
    groups = {name: groups[name] for name in sorted(groups, key=lambda n: (order + [n]).index(n))}
    head = f"{'pages':34}{'n':>6}{'shipped':>9}{'by site':>9}{'sd':>7}" + (f"{'other':>9}" if other else "")
    print("word F1: the shipped model (fitted on these pages), cross-validated by site, and its sd")
    print(head)
    for name, at in groups.items():
        line = (f"{name:34}{len(at):6d}{sum(shipped[i] for i in at) / len(at):9.4f}"
                f"{sum(crossed[i] for i in at) / len(at):9.4f}"
                f"{page_route.site_spread([(pages[i]['site'], crossed[i]) for i in at]):7.4f}")
        if other:
            known = [other[pages[i]["name"].split("/", 1)[1]]["f1"] for i in at
                     if pages[i]["name"].split("/", 1)[1] in other and pages[i]["name"].startswith("wcxb/")]
            line += f"{sum(known) / len(known):9.4f}" if len(known) == len(at) else f"{'':>9}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
