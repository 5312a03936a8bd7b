"""Licences and consent from config and records, opt-out before extraction, licence profiles, data cards."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from conftest import DATA, curate, page_bytes, read_rows, three_domain_pool
from pipelines.config.shards import parse_shards_config
from pipelines.jobs.shards import run_shards
from pipelines.read.warcpack import write_warc


def test_licences_flow_from_config_and_records(tmp_path):
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"text": "A record that inherits the licence of its source, with enough words to be kept."},
        {"text": "A record that names its own licence and consent, with enough words to be kept.",
         "license": "CC0-1.0", "consent": "explicit"},
    ]) + "\n")
    result = curate(tmp_path, {
        "sources": [{"name": "recs", "format": "jsonl", "paths": ["r.jsonl"], "license": "CC-BY-4.0",
                     "attribution": "Example Org", "consent": "public-web"},
                    {"name": "books", "format": "text", "paths": [str(DATA / "books" / "shakespeare__sonnets.txt")],
                     "license": "public-domain"}],
        "output": "out", "filters": {"enabled": False}})
    kept = {(r["source"], r["locator"]): r for r in read_rows(result.output, "kept")}
    first_line = (tmp_path / "r.jsonl").read_bytes().split(b"\n")[0]
    second = f"offset:{len(first_line) + 1}"  # the locator of a JSONL record is its byte offset
    assert (kept[("recs", "offset:0")]["license"], kept[("recs", "offset:0")]["consent"]) == ("CC-BY-4.0", "public-web")
    assert (kept[("recs", second)]["license"], kept[("recs", second)]["consent"]) == ("CC0-1.0", "explicit")
    assert "license" not in json.loads(kept[("recs", second)]["metadata"])
    assert kept[("books", "file")]["license"] == "public-domain" and kept[("books", "file")]["consent"] is None


def test_optout_rejects_before_extraction(tmp_path, truth):
    names = sorted(truth)[:6]
    write_warc([(truth[n]["url"], page_bytes(n)) for n in names], str(tmp_path / "c.warc.gz"))
    hosts = [re.sub(r"^www\.", "", truth[n]["url"].split("/")[2]) for n in names]
    (tmp_path / "domains.txt").write_text(f"# blocked\n{hosts[0]}\n")
    (tmp_path / "urls.txt").write_text(truth[names[1]]["url"].split("?")[0][:30] + "*\n")
    result = curate(tmp_path, {
        "sources": [{"name": "crawl", "format": "warc", "paths": ["c.warc.gz"]}], "output": "out",
        "optout": {"domains": ["domains.txt"], "urls": ["urls.txt"]}, "filters": {"enabled": False}})
    rejected = {r["url"]: r for r in read_rows(result.output, "rejected")}
    assert rejected[truth[names[0]]["url"]]["reason"] == "optout:domain"
    assert rejected[truth[names[1]]["url"]]["reason"] == "optout:url"
    for r in rejected.values():
        if r["reason"].startswith("optout:"):
            assert r["extractor"] is None and r["text"] is None  # extraction never ran for it
    s = result.stats["sources"]["crawl"]
    assert s["stages"]["optout"]["rejected"] == 2 and s["kept"] + s["rejected"] == s["read"] == 6


def licensed_pool(base: Path) -> Path:
    return three_domain_pool(base, {"books": {"license": "public-domain", "consent": "open"},
                                    "code": {"license": "PSF-2.0", "consent": "open"},
                                    "wiki": {"license": "CC-BY-SA-3.0", "consent": "unknown"}})


def test_profile_removes_exactly_the_disallowed_and_counts_them(tmp_path):
    pool = licensed_pool(tmp_path)
    raw = {"pool": str(pool), "output": str(tmp_path / "sh"), "weights": {"books": 0.5, "code": 0.5},
           "budget_tokens": 1_000_000, "profile": {"allow_licenses": ["public-domain"]}}
    manifest = run_shards(parse_shards_config(raw, str(tmp_path)), workers=1)
    rows = [r for p in sorted((tmp_path / "sh" / "parquet").iterdir()) for r in pq.read_table(p).to_pylist()]
    assert {r["license"] for r in rows} == {"public-domain"}
    kept_code = sum(1 for r in read_rows(pool, "kept") if r["source"] == "code")
    assert manifest["excluded_by_source"]["code"] == {"profile_license": kept_code}
    card = json.loads((tmp_path / "sh" / "data_card.json").read_text())
    assert card["excluded_by_source"]["code"]["profile_license"] == kept_code
    assert set(card["licenses"]) == {"public-domain"}
    assert card["licenses"]["public-domain"]["n_tokens"] == sum(r["n_tokens"] for r in rows)
    # consent profile
    raw2 = {**raw, "output": str(tmp_path / "sh2"), "weights": {"books": 1, "wiki": 1},
            "profile": {"allow_consent": ["open"]}}
    m2 = run_shards(parse_shards_config(raw2, str(tmp_path)), workers=1)
    assert m2["excluded_by_source"]["wiki"]["profile_consent"] == sum(
        1 for r in read_rows(pool, "kept") if r["source"] == "wiki")


def test_curate_data_card_numbers_match_the_outputs(tmp_path):
    pool = licensed_pool(tmp_path)
    card = json.loads((pool / "data_card.json").read_text())
    kept = read_rows(pool, "kept")
    rejected = read_rows(pool, "rejected")
    assert card["documents"]["kept"] == len(kept) and card["documents"]["rejected"] == len(rejected)
    assert card["chars_kept"] == sum(r["n_chars"] for r in kept)
    for lic, v in card["licenses"].items():
        mine = [r for r in kept if (r["license"] or "unknown") == lic]
        assert v == {"documents": len(mine), "n_chars": sum(r["n_chars"] for r in mine)}
    langs = Counter(r["lang"] for r in kept)
    assert sum(v["kept"] for v in card["languages"].values()) == len(kept)
    assert sum(v["read"] for v in card["languages"].values()) == len(kept) + len(rejected)
    for lang, v in card["languages"].items():
        if lang not in ("other", "unknown"):
            assert v["kept"] == langs[lang] and v["n_chars"] == sum(r["n_chars"] for r in kept if r["lang"] == lang)
    assert card["funnel"][-1] == {"stage": "kept", "documents_in": len(kept), "documents_out": len(kept),
                                  "chars_in": sum(r["n_chars"] for r in kept)}
    assert card["funnel"][0]["documents_in"] == len(kept) + len(rejected)
    per_source = Counter(r["source"] for r in kept)
    assert {n: s["kept"] for n, s in card["sources"].items()} == dict(per_source)
    md = (pool / "data_card.md").read_text()
    assert f"| kept | {len(kept):,} | {len(kept):,} |" in md
    assert "| CC-BY-SA-3.0 |" in md and (pool / "funnel.png").stat().st_size > 1000
