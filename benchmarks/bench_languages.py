"""Curate on the same text in many languages: share kept per language, its ratio to English, the top rejection
reasons, near-duplicate recall and precision on planted near-copies, and the cost per document.

    python benchmarks/bench_languages.py [--baseline CHECKOUT] [--out FOLDER]

Input (not tuning data: the threshold table is made from Debian's installation guide and New Maintainers'
Guide): the Debian Reference and its translations (apt-get install debian-reference-en debian-reference-de
debian-reference-es debian-reference-fr debian-reference-id debian-reference-it debian-reference-ja
debian-reference-pt debian-reference-zh-cn). Each chapter is cut at its second-level sections, one HTML document
per section, so every language holds the same documents. Curate runs with the default config, once on the
documents alone (shares kept) and once with a planted near-copy of every fourth document (about 1% of its words,
or characters where words are not spaced, changed, and its last paragraph dropped if it has eight or more).
Recall counts the planted pairs that both reached dedup and whose texts' shingle Jaccard is at least the
threshold (0.8); precision, the pairs dedup joined that are planted ones. With --baseline, the same runs use an
earlier checkout of refinery (e.g. `git worktree add /tmp/base <commit>`), printed side by side.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq
from lxml import html as lxml_html

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
from pipelines.dedup.minhash import jaccard, shingle_hashes  # noqa: E402
from pipelines.lang.words import units  # noqa: E402

REFERENCE = "/usr/share/debian-reference"
LANGS = {"en": "en", "de": "de", "fr": "fr", "es": "es", "pt": "pt", "it": "it", "id": "id", "ja": "ja",
         "zh": "zh-cn"}
EVERY = 4  # a near-copy of every fourth document


def sections(lang: str) -> list[tuple[str, str]]:
    """(name, HTML) of each second-level section of the Debian Reference in one language."""
    out = []
    for path in sorted(glob.glob(os.path.join(REFERENCE, f"ch*.{LANGS[lang]}.html"))):
        tree = lxml_html.parse(path)
        chapter = os.path.basename(path).split(".")[0]
        for k, div in enumerate(tree.xpath('//div[@class="section"][./div[@class="titlepage"]//h3]')):
            body = lxml_html.tostring(div, encoding="unicode")
            out.append((f"{chapter}-{k:03d}", f"<html><head><meta charset='utf-8'></head><body>{body}</body></html>"))
    return out


def near_copy(html: str, seed: int) -> str:
    """The same page with 1-2% of its text's words (or CJK characters) replaced and its last paragraph dropped."""
    rng = random.Random(seed)
    tree = lxml_html.fromstring(html)
    paragraphs = tree.xpath("//p")
    if len(paragraphs) >= 8:
        paragraphs[-1].getparent().remove(paragraphs[-1])
    for node in tree.iter():
        if node.text and rng.random() < 0.5:
            pieces = units(node.text)
            for u in rng.sample(pieces, k=min(len(pieces), max(0, int(len(pieces) * 0.02)))):
                node.text = node.text.replace(u, "x" if u.isascii() else "字", 1)
    return lxml_html.tostring(tree, encoding="unicode")


def write_inputs(folder: str, copies: bool) -> dict[str, list[str]]:
    """One folder of HTML files per language; returns the planted (original, copy) file names per language."""
    planted: dict[str, list[str]] = {}
    for lang in LANGS:
        os.makedirs(os.path.join(folder, lang), exist_ok=True)
        for i, (name, page) in enumerate(sections(lang)):
            with open(os.path.join(folder, lang, f"{name}.html"), "w", encoding="utf-8") as fh:
                fh.write(page)
            if copies and i % EVERY == 0:
                with open(os.path.join(folder, lang, f"{name}.copy.html"), "w", encoding="utf-8") as fh:
                    fh.write(near_copy(page, i))
                planted.setdefault(lang, []).append(name)
    return planted


def config(inputs: str, output: str) -> dict:
    return {"output": output,
            "sources": [{"name": lang, "format": "html", "paths": [os.path.join(inputs, lang, "*.html")]}
                        for lang in LANGS]}


def curate(checkout: str, cfg: dict, folder: str) -> float:
    import yaml

    path = os.path.join(folder, "curate.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    env = dict(os.environ, PYTHONPATH=checkout)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "curate", path, "--workers", "2"], cwd=checkout, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def rows(output: str) -> list[dict]:
    out = []
    for kind in ("kept", "rejected"):
        for path in sorted(glob.glob(os.path.join(output, kind, "*.parquet"))):
            cols = [c for c in ("source", "source_uri", "reason", "dup_cluster_id", "text")
                    if c in pq.ParquetFile(path).schema_arrow.names]
            for r in pq.read_table(path, columns=cols).to_pylist():
                r["name"] = os.path.basename(r["source_uri"]).removesuffix(".html")
                r.setdefault("reason", None)
                out.append(r)
    return out


def shares(table: list[dict]) -> dict[str, dict]:
    out = {}
    for lang in LANGS:
        mine = [r for r in table if r["source"] == lang]
        reasons: dict[str, int] = {}
        for r in mine:
            if r["reason"]:
                reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        kept = sum(1 for r in mine if r["reason"] is None)
        out[lang] = {"docs": len(mine), "kept": kept / len(mine) if mine else 0.0,
                     "top": sorted(reasons.items(), key=lambda kv: -kv[1])[:2]}
    return out


def similar(a: str, b: str, threshold: float = 0.8) -> bool:
    """The pair is a near-duplicate by the definition dedup applies: shingle Jaccard at least the threshold."""
    return jaccard(shingle_hashes(a, 5), shingle_hashes(b, 5)) >= threshold


def near_dups(table: list[dict], planted: dict[str, list[str]]) -> dict[str, dict]:
    """Recall over planted pairs that both reached dedup; precision over every pair dedup joined."""
    out = {}
    for lang, names in planted.items():
        mine = {r["name"]: r for r in table if r["source"] == lang}
        reached = lambda r: r["reason"] is None or r["reason"].startswith("dedup:")  # noqa: E731
        pairs = [(mine[n], mine[n + ".copy"]) for n in names if n + ".copy" in mine]
        pairs = [(a, b) for a, b in pairs if reached(a) and reached(b) and similar(a["text"], b["text"])]
        found = sum(1 for a, b in pairs if a["dup_cluster_id"] and a["dup_cluster_id"] == b["dup_cluster_id"])
        clusters: dict[str, list[str]] = {}
        for r in mine.values():
            if r["dup_cluster_id"] and reached(r):
                clusters.setdefault(r["dup_cluster_id"], []).append(r["name"].removesuffix(".copy"))
        joined = sum(len(m) - 1 for m in clusters.values())
        right = sum(len(m) - len(set(m)) for m in clusters.values())
        out[lang] = {"pairs": len(pairs), "recall": found / len(pairs) if pairs else None,
                     "precision": right / joined if joined else None}
    return out


def run(checkout: str, work: str) -> dict:
    result = {}
    for copies in (False, True):
        folder = os.path.join(work, "copies" if copies else "plain")
        planted = write_inputs(os.path.join(folder, "in"), copies)
        seconds = curate(checkout, config(os.path.join(folder, "in"), os.path.join(folder, "out")), folder)
        table = rows(os.path.join(folder, "out"))
        if copies:
            result["near_dups"] = near_dups(table, planted)
        else:
            result["shares"], result["seconds"], result["docs"] = shares(table), seconds, len(table)
    return result


def report(name: str, r: dict) -> None:
    en = r["shares"]["en"]["kept"]
    print(f"\n{name}: {r['docs']} documents in {r['seconds']:.1f} s ({1000 * r['seconds'] / r['docs']:.1f} ms/doc, "
          "2 workers, whole curate job)")
    print(f"{'lang':<5}{'docs':>6}{'kept':>7}{'/ en':>7}{'recall':>8}{'prec.':>7}  top rejections")
    for lang, s in r["shares"].items():
        d = r["near_dups"].get(lang, {})
        rec = "-" if d.get("recall") is None else f"{d['recall']:.2f}"
        prec = "-" if d.get("precision") is None else f"{d['precision']:.2f}"
        top = ", ".join(f"{k} {v}" for k, v in s["top"])
        print(f"{lang:<5}{s['docs']:>6}{s['kept']:>7.2f}{s['kept'] / en if en else 0:>7.2f}{rec:>8}{prec:>7}  {top}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", help="an earlier checkout of refinery to run side by side")
    ap.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    if not glob.glob(os.path.join(REFERENCE, "ch01.*.html")):
        print("bench_languages: install the Debian Reference translations first (see the docstring)")
        return 2
    work = args.out or tempfile.mkdtemp(prefix="bench-languages-")
    results = {}
    if args.baseline:
        results["baseline"] = run(os.path.abspath(args.baseline), os.path.join(work, "baseline"))
    results["refinery"] = run(HERE, os.path.join(work, "refinery"))
    for name, r in results.items():
        report(name, r)
    if args.baseline:
        b, n = results["baseline"], results["refinery"]
        print(f"\ncost per document: {n['seconds'] / n['docs'] / (b['seconds'] / b['docs']):.2f}x the baseline's "
              f"(whole curate job on these HTML documents)")
    with open(os.path.join(work, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
