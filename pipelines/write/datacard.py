"""Data cards: what went in, what came out and why, for a curated pool and for training shards.

Each card is `data_card.json` (the numbers), `data_card.md` (the same numbers for people) and PNG charts. Every
number is computed from the outputs the card sits beside, so a reader can check it.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.runtime import storage
from pipelines.runtime.files import atomic_open, read_parquet, save_png, write_json
from pipelines.runtime.later import import_later


def import_charts() -> None:
    """Import the charting library while a job's pipeline runs (runtime/later.py): imported at the end, where
    the card is drawn, it is about a second of the job's serial finish."""
    import_later(_plt)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read(folder: str, columns: list[str]) -> list[dict]:
    rows: list[dict] = []
    for path in _parquet_files(folder):
        with storage.arrow_input(path) as source, pq.ParquetFile(source) as parquet:  # one footer read
            have = parquet.schema_arrow.names
            rows.extend(parquet.read(columns=[c for c in columns if c in have]).to_pylist())
    return rows


def _parquet_files(folder: str) -> list[str]:
    return [os.path.join(folder, n) for n in storage.listdir(folder) if n.endswith(".parquet")]



def _breakdown(rows: list[dict], key: str, weight: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, weight: 0})
    for r in rows:
        k = r.get(key) or "unknown"
        out[k]["documents"] += 1
        out[k][weight] += int(r.get(weight) or 0)
    return dict(sorted(out.items(), key=lambda kv: -kv[1][weight]))


def _languages(stats: dict, kept: dict[str, dict[str, int]]) -> dict[str, dict]:
    """Per language (as stats.json groups them): read, kept, rejected, top reasons, kept characters, how words
    were cut."""
    out = {}
    grouped = stats.get("languages", {})
    for lang, s in grouped.items():
        chars = kept.get(lang, {}).get("n_chars", 0) if lang != "other" else sum(
            v["n_chars"] for k, v in kept.items() if k not in grouped)
        out[lang] = {"read": s["read"], "kept": s["kept"], "rejected": s["rejected"], "n_chars": chars,
                     "words": stats.get("segmenters", {}).get(lang, "-"),
                     "top_rejections": dict(list(s["rejected_by_reason"].items())[:3])}
    return out


def curate_card(output: str, stats: dict, manifest: dict) -> dict:
    """Write the curated pool's card; returns its numbers."""
    kept = _read(os.path.join(output, "kept"), ["source", "n_chars", "lang", "license", "consent", "dup_cluster_size"])
    rejected = _read(os.path.join(output, "rejected"), ["source", "reason", "n_chars"])
    stages = list(next(iter(stats["sources"].values()))["stages"]) if stats["sources"] else []
    funnel = []
    for stage in stages:
        docs_in = sum(s["stages"][stage]["in"] for s in stats["sources"].values())
        docs_out = sum(s["stages"][stage]["out"] for s in stats["sources"].values())
        chars = [s["stages"][stage].get("chars_in") for s in stats["sources"].values()]
        funnel.append({"stage": stage, "documents_in": docs_in, "documents_out": docs_out,
                       "chars_in": sum(c for c in chars if c is not None) if any(c is not None for c in chars) else None})
    funnel.append({"stage": "kept", "documents_in": len(kept), "documents_out": len(kept),
                   "chars_in": sum(r["n_chars"] for r in kept)})
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in rejected:
        reasons[r["source"]][r["reason"]] += 1
    card = {
        "kind": "curated pool",
        "documents": {"read": stats["totals"]["read"], "kept": len(kept), "rejected": len(rejected)},
        "chars_kept": sum(r["n_chars"] for r in kept),
        "funnel": funnel,
        "sources": {name: {"read": s["read"], "kept": s["kept"], "rejected": s["rejected"],
                           "top_rejections": dict(reasons[name].most_common(5))} for name, s in stats["sources"].items()},
        "dedup": {"exact_removed": sum(c["dedup:exact"] for c in reasons.values()),
                  "url_removed": sum(c["dedup:url"] for c in reasons.values()),
                  "minhash_removed": sum(c["dedup:minhash"] for c in reasons.values()),
                  "minhash_clusters": stats.get("minhash", {}).get("clusters"),
                  "kept_with_duplicates": sum(1 for r in kept if (r.get("dup_cluster_size") or 1) > 1)},
        "classifiers": {name: {"threshold": t,
                               "rejected": sum(c[f"classify:{name}"] for c in reasons.values())}
                        for name, t in (stats.get("classifier_thresholds") or {}).items()},
        "licenses": _breakdown(kept, "license", "n_chars"),
        "consent": _breakdown(kept, "consent", "n_chars"),
        "languages": _languages(stats, _breakdown(kept, "lang", "n_chars")),
        "segmenter_notes": [w for w in stats.get("warnings", []) if w.startswith("no word segmenter")],
        "config_hash": manifest["config_hash"],
        "versions": manifest["versions"],
        "models": manifest["models"],
    }
    _write(output, card, _curate_markdown(card))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar([f["stage"] for f in funnel], [f["documents_out"] for f in funnel])
    ax.set_ylabel("documents after the stage")
    ax.set_title("curation funnel")
    fig.tight_layout()
    save_png(fig, os.path.join(output, "funnel.png"))
    plt.close(fig)
    _pie(os.path.join(output, "licenses.png"), card["licenses"], "n_chars", "kept characters by licence")
    return card


def _tally(folder: str, key: str, weight: str) -> dict[str, dict[str, int]]:
    """_breakdown counted by Arrow, file by file: no Python object per row (a shards run has millions)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, weight: 0})
    for path in _parquet_files(folder):
        with storage.arrow_input(path) as source:
            table = read_parquet(source, [key, weight])
        table = table.set_column(0, key, pc.fill_null(table.column(key), "unknown"))
        for group in table.group_by(key).aggregate([(weight, "count"), (weight, "sum")]).to_pylist():
            out[group[key]]["documents"] += group[f"{weight}_count"]
            out[group[key]][weight] += int(group[f"{weight}_sum"] or 0)
    return dict(sorted(out.items(), key=lambda kv: -kv[1][weight]))


def shards_card(output: str, manifest: dict) -> dict:
    provenance = os.path.join(output, "provenance")
    licenses = _tally(provenance, "license", "n_tokens")
    card = {
        "kind": "training shards",
        "tokens": {"budget": manifest["budget_tokens"], "achieved": sum(v["n_tokens"] for v in licenses.values())},
        "rows": sum(v["documents"] for v in licenses.values()),
        "domains": {d: {k: v[k] for k in ("requested_tokens", "achieved_tokens", "requested_share", "achieved_share",
                                          "epochs", "rows_by_repeat", "capped")}
                    for d, v in sorted(manifest["domains"].items())},
        "excluded_by_source": manifest.get("excluded_by_source", {}),
        "profile": manifest.get("profile"),
        "licenses": licenses,
        "consent": _tally(provenance, "consent", "n_tokens"),
        "curated_manifest_sha256": manifest.get("curated_manifest_sha256"),
        "tokenizer": manifest["tokenizer"],
    }
    _write(output, card, _shards_markdown(card))
    plt = _plt()
    names = list(card["domains"])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [card["domains"][n]["requested_tokens"] for n in names], 0.4, label="requested")
    ax.bar([i + 0.2 for i in x], [card["domains"][n]["achieved_tokens"] for n in names], 0.4, label="achieved")
    ax.set_xticks(list(x), names, rotation=30)
    ax.set_ylabel("tokens")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, os.path.join(output, "tokens.png"))
    plt.close(fig)
    _pie(os.path.join(output, "licenses.png"), card["licenses"], "n_tokens", "tokens by licence")
    return card


def _pie(path: str, breakdown: dict, weight: str, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    values = [v[weight] for v in breakdown.values()]
    if sum(values) > 0:
        ax.pie(values, labels=list(breakdown), textprops={"fontsize": 7})
    ax.set_title(title)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def _write(output: str, card: dict, markdown: str) -> None:
    write_json(os.path.join(output, "data_card.json"), card)
    with atomic_open(os.path.join(output, "data_card.md")) as fh:
        fh.write(markdown)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |"
              for r in rows]
    return "\n".join(lines)


def _curate_markdown(c: dict) -> str:
    parts = [
        "# Data card: curated pool",
        f"{c['documents']['read']:,} records read, {c['documents']['kept']:,} kept ({c['chars_kept']:,} characters), "
        f"{c['documents']['rejected']:,} rejected, each with a reason. Config hash `{c['config_hash']}`.",
        "## Funnel", "![funnel](funnel.png)",
        _table(["stage", "documents in", "documents out", "characters in"],
               [[f["stage"], f["documents_in"], f["documents_out"], f["chars_in"]] for f in c["funnel"]]),
        "## Sources",
        _table(["source", "read", "kept", "rejected", "top rejection reasons"],
               [[n, s["read"], s["kept"], s["rejected"], ", ".join(f"{k} {v}" for k, v in s["top_rejections"].items())]
                for n, s in c["sources"].items()]),
        "## Deduplication",
        _table(["exact removed", "URL removed", "MinHash removed", "MinHash clusters", "kept documents with copies"],
               [[c["dedup"]["exact_removed"], c["dedup"]["url_removed"], c["dedup"]["minhash_removed"],
                 c["dedup"]["minhash_clusters"], c["dedup"]["kept_with_duplicates"]]]),
        "## Classifiers",
        _table(["score", "threshold", "rejected"], [[k, v["threshold"], v["rejected"]] for k, v in c["classifiers"].items()])
        if c["classifiers"] else "No classifier ran.",
        "## Licences", "![licences](licenses.png)",
        _table(["licence", "documents", "characters"], [[k, v["documents"], v["n_chars"]] for k, v in c["licenses"].items()]),
        "## Consent",
        _table(["consent", "documents", "characters"], [[k, v["documents"], v["n_chars"]] for k, v in c["consent"].items()]),
        "## Languages",
        "Rows rejected before language ID are `unknown`; languages with few documents are summed as `other`. Words "
        "are cut by spaces, by a segmenter, or one per character (README, \"Languages\").",
        _table(["language", "read", "kept", "rejected", "kept characters", "words", "top rejection reasons"],
               [[k, v["read"], v["kept"], v["rejected"], v["n_chars"], v["words"],
                 ", ".join(f"{r} {n}" for r, n in v["top_rejections"].items())] for k, v in c["languages"].items()]),
        *c["segmenter_notes"],
        "## Versions and models",
        _table(["package or model", "version or sha256"], [[k, v] for k, v in {**c["versions"], **c["models"]}.items()]),
    ]
    return "\n\n".join(parts) + "\n"


def _shards_markdown(c: dict) -> str:
    parts = [
        "# Data card: training shards",
        f"{c['tokens']['achieved']:,} tokens of a {c['tokens']['budget']:,.0f}-token budget in {c['rows']:,} rows; "
        f"curated manifest sha256 `{c['curated_manifest_sha256']}`; tokenizer {json.dumps(c['tokenizer'])}.",
        "## Tokens per domain", "![tokens](tokens.png)",
        _table(["domain", "requested tokens", "achieved tokens", "requested share", "achieved share", "epochs",
                "rows by repeat", "capped"],
               [[d, v["requested_tokens"], v["achieved_tokens"], v["requested_share"], v["achieved_share"], v["epochs"],
                 json.dumps(v["rows_by_repeat"]), v["capped"]] for d, v in c["domains"].items()]),
        "## Excluded before sampling",
        f"Profile: {json.dumps(c['profile'])}",
        _table(["source", "reason", "documents"],
               [[s, why, n] for s, v in sorted(c["excluded_by_source"].items()) for why, n in sorted(v.items())]),
        "## Licences", "![licences](licenses.png)",
        _table(["licence", "rows", "tokens"], [[k, v["documents"], v["n_tokens"]] for k, v in c["licenses"].items()]),
        "## Consent",
        _table(["consent", "rows", "tokens"], [[k, v["documents"], v["n_tokens"]] for k, v in c["consent"].items()]),
    ]
    return "\n\n".join(parts) + "\n"
