"""Deduplication: exact, URL and MinHash against a near-duplicate corpus whose true Jaccard the test computes."""
from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from conftest import DATA, curate, line_numbers, read_rows
from pipelines.dedup.components import ConnectedComponents
from pipelines.dedup.near import bucket_pairs
from pipelines.dedup.signals import normalize_url, survivor_key
from pipelines.dedup.minhash import catch_probability, jaccard, shingle_hashes

BOILERPLATE = ("Subscribe to our newsletter for the latest stories. Follow us on social media and share this "
               "article with your friends. All rights reserved.")


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n|\n", text) if p.strip()]


def edit_words(text: str, rng: random.Random, fraction: float, vocabulary: list[str], delete: bool = False) -> str:
    tokens = text.split(" ")
    for i in rng.sample(range(len(tokens)), max(1, int(len(tokens) * fraction))):
        tokens[i] = "" if delete else rng.choice(vocabulary)
    return re.sub(r"  +", " ", " ".join(tokens))


def variants(body: str, rng: random.Random, vocabulary: list[str]) -> dict[str, str]:
    paras = paragraphs(body)
    shuffled = paras[:]
    rng.shuffle(shuffled)
    return {
        "orig": body,
        "sub2": edit_words(body, rng, 0.02, vocabulary),
        "sub6": edit_words(body, rng, 0.06, vocabulary),
        "del4": edit_words(body, rng, 0.04, vocabulary, delete=True),
        "boiler": body + "\n\n" + BOILERPLATE,
        "reorder": "\n\n".join(shuffled),
        "heavy": edit_words(body, rng, 0.35, vocabulary),
    }


@pytest.fixture(scope="module")
def near_dup_run(tmp_path_factory, truth):
    """Gold article bodies of the real pages and edited copies of each, as one JSONL source."""
    base = tmp_path_factory.mktemp("neardup")
    rng = random.Random(7)
    bodies = [truth[n]["articleBody"] for n in sorted(truth) if len(truth[n]["articleBody"].split()) >= 150]
    vocabulary = sorted({w for b in bodies for w in b.split()})
    records = []
    for i, body in enumerate(bodies):
        for kind, text in variants(body, rng, vocabulary).items():
            records.append({"text": text, "family": i, "kind": kind})
    rng.shuffle(records)
    with gzip.open(base / "docs.jsonl.gz", "wt") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    result = curate(base, {
        "sources": [{"name": "news", "format": "jsonl", "paths": ["docs.jsonl.gz"]}],
        "output": "out",
        "filters": {"enabled": False},
    }, workers=2)
    return result, records


def test_near_duplicates_found_with_recall_and_precision(near_dup_run):
    result, records = near_dup_run
    rows = read_rows(result.output, "kept") + read_rows(result.output, "rejected")
    number = line_numbers(Path(result.output).parent / "docs.jsonl.gz")
    by_line = {number[r["locator"]]: r for r in rows}
    assert len(by_line) == len(records)
    shingles = {i: shingle_hashes(rec["text"], 5) for i, rec in enumerate(records)}
    families = defaultdict(list)
    for i, rec in enumerate(records):
        families[rec["family"]].append(i)

    # recall: every pair at true Jaccard >= 0.8 ends in one cluster
    true_pairs = found = 0
    for members in families.values():
        for x in members:
            for y in members:
                if x < y and jaccard(shingles[x], shingles[y]) >= 0.8:
                    true_pairs += 1
                    cx, cy = by_line[x + 1]["dup_cluster_id"], by_line[y + 1]["dup_cluster_id"]
                    found += cx is not None and cx == cy
    recall = found / true_pairs
    # precision: a removed document is a copy of its survivor (same article, Jaccard >= 0.5 with it)
    ids = {r["id"]: line for line, r in by_line.items()}
    removed = [(line, r) for line, r in by_line.items() if r.get("reason") == "dedup:minhash"]
    correct = 0
    for line, r in removed:
        survivor_line = ids[re.search(r"survivor=(\w+)", r["detail"]).group(1)]
        same_family = records[line - 1]["family"] == records[survivor_line - 1]["family"]
        correct += same_family and jaccard(shingles[line - 1], shingles[survivor_line - 1]) >= 0.5
    precision = correct / len(removed)
    print(f"true pairs >= 0.8: {true_pairs}, recall {recall:.3f}; removed {len(removed)}, precision {precision:.3f}")
    assert true_pairs > 100
    assert recall >= 0.95
    assert precision >= 0.98
    # heavy edits (about a third of the words replaced) are not near-duplicates and stay
    heavy = [by_line[i + 1] for i, rec in enumerate(records) if rec["kind"] == "heavy"]
    assert sum(1 for r in heavy if r.get("reason") == "dedup:minhash") <= len(heavy) * 0.05


def test_audit_in_stats(near_dup_run):
    result, _ = near_dup_run
    audit = result.stats["minhash"]
    assert audit["settings"]["bands"] == 14 and audit["settings"]["rows"] == 8
    assert audit["candidate_pairs"] >= audit["verified_pairs"] > 0
    assert 0 < audit["candidate_precision"] <= 1
    assert sum(audit["candidate_jaccard_histogram"].values()) == audit["candidate_pairs"]
    assert audit["clusters"] == sum(audit["cluster_sizes"].values()) > 0
    removed = result.stats["sources"]["news"]["rejected_by_reason"]["dedup:minhash"]
    survivors_and_removed = sum(int(k) * v for k, v in audit["cluster_sizes"].items() if k.isdigit())
    assert survivors_and_removed <= removed + audit["clusters"]
    assert audit["unsettled_edges_after_rounds"] == 0
    assert audit["catch_probability"]["0.80"] == pytest.approx(catch_probability(0.8, 14, 8), abs=1e-4)


def window_docs() -> list[str]:
    """A, B, C: sliding windows over real text, so that A~B and B~C but A and C are far apart."""
    words = (DATA / "books" / "milton__areopagitica.txt").read_text().split()[:2400]
    chunks = [" ".join(words[i * 200 : (i + 1) * 200]) for i in range(12)]
    return ["\n\n".join(chunks[k : k + 10]) for k in range(3)]


def test_transitive_cluster_has_one_survivor(tmp_path):
    a, b, c = window_docs()
    sh = [shingle_hashes(t, 5) for t in (a, b, c)]
    assert jaccard(sh[0], sh[1]) >= 0.8 and jaccard(sh[1], sh[2]) >= 0.8 and jaccard(sh[0], sh[2]) < 0.8
    c_longer = c + " and a few more closing words"
    with open(tmp_path / "w.jsonl", "w") as fh:
        for t in (a, b, c_longer):
            fh.write(json.dumps({"text": t}) + "\n")
    result = curate(tmp_path, {"sources": [{"name": "s", "format": "jsonl", "paths": ["w.jsonl"]}], "output": "out",
                               "filters": {"enabled": False}})
    kept = read_rows(result.output, "kept")
    rejected = read_rows(result.output, "rejected")
    assert len(kept) == 1 and len(rejected) == 2
    survivor = kept[0]
    assert line_numbers(tmp_path / "w.jsonl")[survivor["locator"]] == 3  # the longest text
    assert survivor["dup_cluster_size"] == 3
    assert {r["dup_cluster_id"] for r in rejected} == {survivor["dup_cluster_id"]}
    assert all(r["reason"] == "dedup:minhash" and f"survivor={survivor['id']}" in r["detail"] for r in rejected)


def test_exact_and_short_documents(tmp_path):
    text = (DATA / "books" / "shakespeare__sonnets.txt").read_text()[:3000]
    lines = [text, text, "  " + text.upper() + "  "]  # the same text three times, with different ids
    shorts = ["to be or not", "to be or", "or not to be", "be or not to", "not to be or", "to be or not"]
    with open(tmp_path / "e.jsonl", "w") as fh:
        for t in lines + shorts:
            fh.write(json.dumps({"text": t}) + "\n")
    result = curate(tmp_path, {"sources": [{"name": "s", "format": "jsonl", "paths": ["e.jsonl"]}],
                               "output": "out", "filters": {"enabled": False}})
    reasons = result.stats["sources"]["s"]["rejected_by_reason"]
    # 2 copies of the long text and the repeated short line are exact duplicates; distinct short lines stay
    assert reasons == {"dedup:exact": 3}
    kept = read_rows(result.output, "kept")
    assert sum(1 for r in kept if r["n_words"] < 5) == 5
    long_kept = [r for r in kept if r["n_words"] > 100]
    assert len(long_kept) == 1 and long_kept[0]["dup_cluster_size"] == 3


def test_url_dedup_keeps_the_newest(tmp_path):
    body = " ".join((DATA / "books" / "milton__areopagitica.txt").read_text().split()[:300])
    recs = [
        {"text": body + " first version", "url": "HTTPS://Example.com/a/", "date": "2024-01-01"},
        {"text": "a completely different text about gardening and the weather " * 10, "url": "https://example.com/a#top", "date": "2025-06-01"},
        {"text": body, "url": "https://example.com/b"},
    ]
    with open(tmp_path / "u.jsonl", "w") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    result = curate(tmp_path, {"sources": [{"name": "s", "format": "jsonl", "paths": ["u.jsonl"]}],
                               "output": "out", "dedup": {"minhash": {"enabled": False}}, "filters": {"enabled": False}})
    rejected = read_rows(result.output, "rejected")
    assert [(r["locator"], r["reason"]) for r in rejected] == [("offset:0", "dedup:url")]  # the first line
    assert normalize_url("HTTPS://Example.com:443/a/?q=1#x") == "https://example.com/a?q=1"


def test_same_kept_set_with_one_and_two_workers(tmp_path):
    docs = window_docs()
    with open(tmp_path / "d.jsonl", "w") as fh:
        for t in docs + [docs[0] + " tail"] + [(DATA / "books" / "shakespeare__macbeth.txt").read_text()[:5000]]:
            fh.write(json.dumps({"text": t}) + "\n")
    config = {"sources": [{"name": "s", "format": "jsonl", "paths": [str(tmp_path / "d.jsonl")]}], "output": "out",
              "filters": {"enabled": False}}
    one = curate(tmp_path / "one", config)
    two = curate(tmp_path / "two", config, workers=2)
    assert one.stats["sources"]["s"]["rejected_by_reason"] == {"dedup:minhash": 3}
    assert [r["id"] for r in read_rows(one.output, "kept")] == [r["id"] for r in read_rows(two.output, "kept")]
    for kind in ("kept", "rejected"):
        for a, b in zip(sorted(Path(one.output, kind).iterdir()), sorted(Path(two.output, kind).iterdir())):
            assert a.read_bytes() == b.read_bytes()


def reference_components(edges):
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


@pytest.mark.parametrize("rounds", [0, 1, 4])
def test_connected_components_match_union_find(rounds):
    rng = random.Random(rounds)
    nodes = [f"n{i:04d}" for i in range(400)]
    chain = [(nodes[i], nodes[i + 1]) for i in range(0, 150)]  # a long chain needs many rounds
    random_edges = [tuple(rng.sample(nodes[150:], 2)) for _ in range(220)]
    edges = chain + random_edges
    expected = sorted(reference_components(edges).items())
    with beam.Pipeline(runner=FnApiRunner()) as p:
        roots = p | beam.Create(edges) | ConnectedComponents(rounds)
        assert_that(roots["roots"], equal_to(expected))


def test_bucket_pairs_and_survivor_key():
    assert list(bucket_pairs(["c", "a", "b", "a"], 10)) == [("a", "b"), ("a", "c"), ("b", "c")]
    capped = list(bucket_pairs([f"{i:03d}" for i in range(100)], 10))
    assert len(capped) == 99 + 98  # each with the first, and each with its predecessor
    hi = {"id": "b", "n_chars": 5, "scores": {"quality_web": 0.9}}
    lo = {"id": "a", "n_chars": 18, "scores": {"quality_web": 0.1}}
    assert min([hi, lo], key=lambda d: survivor_key(d, None))["id"] == "b"  # quality first
    assert min([hi, lo], key=lambda d: survivor_key(d, "missing"))["id"] == "a"  # then length
    assert shingle_hashes("a b", 5).shape == (1,) and shingle_hashes("a b", 5)[0] != shingle_hashes("a c", 5)[0]


def test_explain_command():
    exe = Path(sys.executable).parent / "refinery"
    out = subprocess.run([str(exe), "dedup", "explain", "--threshold", "0.8"], capture_output=True, text=True, check=True)
    assert "14 bands x 8 rows" in out.stdout and "0.9235" in out.stdout
    assert "for a threshold of 0.8" in out.stdout
