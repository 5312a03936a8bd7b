"""Article-text quality of the HTML path on 61 real news pages with human-marked article bodies."""
from __future__ import annotations

import re

import pytest

from conftest import WEB, curate, read_rows
from pipelines.text import shingle_f1 as f1

NAMES_IN_URI = re.compile(r"([0-9a-f]{64})\.html\.gz$")


@pytest.fixture(scope="module")
def web_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("web")
    config = {
        "sources": [{"name": "web", "format": "html", "paths": [str(WEB / "*.html.gz")]}],
        "output": "out",
        "filters": {"enabled": False},
        "dedup": {"enabled": False},
    }
    return curate(base, config)


def test_every_page_is_extracted(web_run, truth):
    kept = read_rows(web_run.output, "kept")
    assert web_run.stats["sources"]["web"]["read"] == len(truth) == 61
    assert len(kept) == 61, read_rows(web_run.output, "rejected")


def test_article_f1_over_the_set_is_at_least_0_90(web_run, truth):
    kept = read_rows(web_run.output, "kept")
    scores = {}
    for row in kept:
        name = NAMES_IN_URI.search(row["source_uri"]).group(1)
        scores[name] = f1(row["text"], truth[name]["articleBody"])
    assert set(scores) == set(truth)
    mean = sum(scores.values()) / len(scores)
    print(f"mean article F1 over {len(scores)} pages: {mean:.4f}")
    assert mean >= 0.90
    # no page is a total miss: the extractor found the article on each one
    assert min(scores.values()) > 0.3, sorted(scores.items(), key=lambda kv: kv[1])[:3]


def test_f1_metric_behaves():
    assert f1("a b c d e f", "a b c d e f") == 1.0
    assert f1("a b c d", "w x y z") == 0.0
    assert 0.0 < f1("a b c d e f g", "a b c d e x y") < 1.0


def test_extractor_and_metadata_are_recorded(web_run):
    kept = read_rows(web_run.output, "kept")
    assert all(r["extractor"].startswith("trafilatura ") and r["extractor"].endswith(" + region 11 + router 12")
               for r in kept)
    import json

    metadata = [json.loads(r["metadata"]) for r in kept]
    titled = [m for m in metadata if m.get("title")]
    assert len(titled) >= 55
    # which view of the page gave the text, what kind of page the router takes it for, and how sure it is
    assert {m["html_text"] for m in metadata} <= {"trafilatura", "region", "filtered", "declared"}
    assert sum(m["html_text"] == "trafilatura" for m in metadata) >= 50  # news articles stay trafilatura's (54)
    assert sum(m["page_type"] == "article" for m in metadata) >= 50
    assert all(0.0 <= m["extract_confidence"] <= 1.0 for m in metadata)
    assert sum(m["extract_confidence"] >= 0.8 for m in metadata) >= 45
