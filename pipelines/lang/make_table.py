"""Build the per-language threshold table (pipelines/lang/thresholds.json) from real translated text.

    python -m pipelines.lang.make_table [--out FILE] [LANG=GLOB ...]

Input: HTML pages whose language is known, by default Debian's installation guide and New Maintainers' Guide in
every language Debian ships them in (apt-get install installation-guide-amd64 maint-guide maint-guide-de ...;
see the README). Each page is extracted as curate extracts HTML and identified with lid.176; a page whose
identified language is not its own is left out of its language's rule statistics.

The method follows FineWeb-2: a threshold removes about as much of each language as the English threshold
removes of English. For each rule, q is the share of English pages the English threshold fails. When q is at
least Q_MIN, a language's threshold is its own q-quantile (1-q for an upper bound); the translations are the same
text, so the same share of pages fails. When English fails (almost) no page, a rule whose value scales with the
language's words (counts, word lengths, per-word ratios) is scaled by the ratio of the language's tail to
English's; the other rules keep the English threshold. English keeps the published thresholds. The language ID
threshold is FineWeb-2's max(0.3, min(0.9, median - std)) of the confidences of the pages identified as the
language. Rows named `<lang>/chars` hold the thresholds for a segmented language cut one word per character (its
segmenter missing); `*/chars` is their median, for other scripts written without spaces.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np

from classifiers.langid import identify
from pipelines.extract.html import extract_html
from pipelines.filter.rules import RULES, Doc, fails, measure
from pipelines.lang.words import SEGMENTED

Q_MIN = 0.02  # below this English fail share, a quantile of a few hundred pages is noise
MIN_DOCS = 30  # fewer pages of a language: no row
TAIL = 0.05
HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "thresholds.json")
GUIDE = "/usr/share/doc/installation-guide-amd64"
MAINT = "/usr/share/doc/maint-guide{suffix}/html/*.html"


def default_inputs() -> list[tuple[str, str]]:
    """(language, glob) of the Debian manuals installed on this machine."""
    pairs = [(code, os.path.join(GUIDE, code, "*.html")) for code in sorted(os.listdir(GUIDE))
             if os.path.isdir(os.path.join(GUIDE, code))] if os.path.isdir(GUIDE) else []
    pairs.append(("en", MAINT.format(suffix="")))
    for folder in sorted(glob.glob("/usr/share/doc/maint-guide-*")):
        pairs.append((folder.rsplit("maint-guide-", 1)[1], MAINT.format(suffix="-" + folder.rsplit("-", 1)[1])))
    return pairs


def code_of(name: str) -> str:
    """lid.176's code for a manual's language folder (zh_CN -> zh, pt_BR -> pt)."""
    return re.split("[-_]", name)[0].lower()


def page_text(path: str) -> str:
    from pipelines.config.extract import HtmlSettings

    with open(path, "rb") as fh:
        html = fh.read().decode("utf-8", "replace")
    text = (extract_html(html, None, HtmlSettings()).get("text") or "").replace("\r\n", "\n").strip()
    return text


def _measure(job: tuple[str, str]) -> dict | None:
    lang, path = job
    text = page_text(path)
    if not text:
        return None
    found, score = identify(text)
    everything = {r.name: r.default for r in RULES}
    out = {"lang": lang, "found": found, "score": score, "path": path}
    out["values"] = measure(Doc(text, lang), everything)[0] if found == lang else None
    if found == lang and lang in SEGMENTED:
        out["chars"] = measure(Doc(text, lang, how="chars"), everything)[0]
    return out


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=float), q))


def thresholds(values: dict[str, list[float]], english: dict[str, list[float]]) -> dict[str, float]:
    """One language's thresholds from its rule values and English's (see the module docstring)."""
    out: dict[str, float] = {}
    for rule in RULES:
        mine, theirs = values.get(rule.name), english.get(rule.name)
        if not mine or not theirs:
            continue
        q = sum(fails(rule, v, rule.default) for v in theirs) / len(theirs)
        if rule.flag:
            t = rule.default
        elif q >= Q_MIN:
            t = _quantile(mine, q if rule.op == "min" else 1.0 - q)
        elif rule.scales:
            p = TAIL if rule.op == "min" else 1.0 - TAIL
            base = _quantile(theirs, p)
            t = rule.default * _quantile(mine, p) / base if base > 0 else rule.default
        else:
            t = rule.default
        out[rule.name] = round(t) if rule.name.endswith("_words") and t > 10 else round(t, 4)
    return out


def lid_min_score(scores: list[float]) -> float:
    """FineWeb-2's language ID threshold: max(0.3, min(0.9, median - std))."""
    a = np.asarray(scores, dtype=float)
    return round(float(max(0.3, min(0.9, np.median(a) - a.std()))), 4)


def build(inputs: list[tuple[str, str]], workers: int) -> dict:
    jobs = [(code_of(lang), path) for lang, pattern in inputs for path in sorted(glob.glob(pattern))]
    if not jobs:
        raise SystemExit("make_table: no input pages found; install the Debian manuals named in the README")
    with ProcessPoolExecutor(workers) as pool:
        pages = [p for p in pool.map(_measure, jobs, chunksize=8) if p is not None]
    by_lang: dict[str, dict[str, list[float]]] = {}
    chars: dict[str, dict[str, list[float]]] = {}
    scores: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for page in pages:
        scores.setdefault(page["found"], []).append(page["score"])
        if page["values"] is None:
            continue
        counts[page["lang"]] = counts.get(page["lang"], 0) + 1
        for target, key in ((by_lang, "values"), (chars, "chars")):
            for name, v in (page.get(key) or {}).items():
                target.setdefault(page["lang"], {}).setdefault(name, []).append(v)
    english = by_lang["en"]
    rows: dict[str, dict] = {}
    for lang in sorted(by_lang):
        if counts[lang] < MIN_DOCS:
            continue
        rows[lang] = {"pages": counts[lang], "lid_min_score": lid_min_score(scores[lang]),
                      "rules": {r.name: r.default for r in RULES} if lang == "en" else
                      thresholds(by_lang[lang], english)}
        if lang in chars:
            rows[f"{lang}/chars"] = {"pages": counts[lang], "rules": thresholds(chars[lang], english)}
    char_rows = [r["rules"] for k, r in rows.items() if k.endswith("/chars")]
    if char_rows:
        rows["*/chars"] = {"rules": {name: round(float(np.median([r[name] for r in char_rows if name in r])), 4)
                                     for name in char_rows[0]}}
    return {"made": date.today().isoformat(), "method": "pipelines/lang/make_table.py", "pages": len(pages),
            "inputs": [pattern for _, pattern in inputs], "languages": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.lang.make_table", description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="*", help="LANG=GLOB of HTML pages (default: the Debian manuals)")
    ap.add_argument("--out", default=TABLE)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    inputs = [tuple(x.split("=", 1)) for x in args.inputs] or default_inputs()
    table = build(inputs, args.workers)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(table, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    for lang, row in table["languages"].items():
        print(f"{lang:<10} pages={row.get('pages', '-'):<5} lid_min_score={row.get('lid_min_score', '-')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
