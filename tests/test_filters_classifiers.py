"""Language ID, heuristic rules, PII masking, decontamination, and trained fastText classifiers in curate."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import lxml.html
import pytest
import yaml

from conftest import DATA, WEB, curate, page_bytes, read_rows, three_domain_pool
from classifiers.fasttext_model import Classifier, prepare, roc_auc
from classifiers.langid import identify
from pipelines.config.classifier import parse_classifier_config
from pipelines.filter.pii import mask_pii
from pipelines.filter.rules import RULES, Doc, check
from pipelines.schema import scores_of
from pipelines.jobs.train_classifier import run_train

import numpy as np

REAL = "The committee met on Tuesday to discuss the budget. Members agreed that the plan was sound, and they voted to approve it with a few changes to the schedule."


def failing_text(rule: str) -> str:
    """A crafted document that fails exactly the named rule when it is checked alone."""
    para = REAL + " " + REAL
    cases = {
        "gopher_min_words": "Too short to be a document.",
        "gopher_max_words": "word " * 100_001,
        "gopher_min_mean_word_length": " ".join(["I am a bit of an ox to be at it"] * 10),
        "gopher_max_mean_word_length": " ".join(["internationalization"] * 60),
        "gopher_symbol_ratio": para + " #tag" * 40,
        "gopher_bullet_lines": "\n".join(f"• item {i} of the list with some words" for i in range(40)),
        "gopher_ellipsis_lines": "\n".join(f"and then the story went on {i}..." for i in range(40)),
        "gopher_alpha_words": " ".join(str(1000 + i) for i in range(200)) + " " + REAL,
        "gopher_stop_words": " ".join(["apple banana cherry grape melon"] * 20),
        "gopher_dup_line_frac": "\n".join([REAL] * 10 + ["A different closing line ends here."]),
        "gopher_dup_para_frac": "\n\n".join([REAL] * 10 + ["A different closing paragraph."]),
        "gopher_dup_line_char_frac": "\n".join([REAL] * 3 + ["short one.", "short two."]),
        "gopher_dup_para_char_frac": "\n\n".join([REAL] * 3 + ["short one.", "short two."]),
        "c4_lorem_ipsum": para + " Lorem ipsum dolor sit amet.",
        "c4_curly_braces": para + " function f() { return 1; }",
        "c4_min_sentences": "one two three four " * 20,
        "fineweb_line_punct_ratio": "\n".join(f"heading number {i} without a stop" for i in range(40)),
        "fineweb_short_lines": "\n".join(f"line {i}" for i in range(40)) + "\n" + REAL,
        "fineweb_dup_line_chars": "\n".join([REAL, REAL, "Another sentence ends the text here now.", REAL]),
        "fineweb_newline_ratio": "\n".join(f"Word {i}." for i in range(60)),
    }
    if rule.startswith("gopher_top_"):
        return " ".join(["the cat sat on the mat"] * 40)
    if rule.startswith("gopher_dup_") and rule.endswith("gram"):
        return " ".join([REAL] * 6)
    return cases[rule]


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_each_rule_rejects_its_case_and_keeps_real_pages(rule, truth):
    r = next(x for x in RULES if x.name == rule)
    failed = check(Doc(failing_text(rule)), {rule: r.default})
    assert failed is not None and failed[0] == rule
    bodies = [v["articleBody"] for v in truth.values()]
    kept = sum(1 for b in bodies if check(Doc(b), {rule: r.default}) is None)
    assert kept >= 0.9 * len(bodies), f"{rule} keeps only {kept} of {len(bodies)} real articles"


def test_language_id_english_and_arabic(truth):
    # the benchmark pages are mostly English, with a Brazilian, a Russian and a German page among the first 20
    others = {"autoracing.com.br": "pt", "wday.ru": "ru", "comwrap.com/die-": "de"}
    for v in list(truth.values())[:20]:
        expected = next((lang for key, lang in others.items() if key in v["url"]), "en")
        assert identify(v["articleBody"])[0] == expected, v["url"]
    assert identify("حَبيبي˴ ϲΒϴΒhabibi حَبيبي")[0] == "ar"
    assert identify("Der schnelle braune Fuchs springt über den faulen Hund.")[0] == "de"


def test_pii_masking():
    text = ("Write to jane.doe@example.org or call +1 415-555-0132; the server 192.168.10.254 and "
            "2001:db8::8a2e:370:7334 logged it. Version 1.2.3.4.5 and the year 2024 are not PII.")
    masked, counts = mask_pii(text)
    assert counts == {"email": 1, "ip": 2, "phone": 1}
    assert "<EMAIL>" in masked and "<PHONE>" in masked and masked.count("<IP_ADDRESS>") == 2
    assert "2024" in masked and "1.2.3.4.5" in masked
    assert mask_pii("no personal data here")[1] == {"email": 0, "ip": 0, "phone": 0}


def boilerplate(name: str, article: str) -> list[str]:
    """Text fragments of the page that are not part of its article: what extraction strips."""
    tree = lxml.html.fromstring(page_bytes(name))
    for bad in tree.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    body = " ".join(article.lower().split())
    out = []
    for el in tree.iter():
        for piece in (el.text, el.tail):
            s = " ".join((piece or "").split())
            if len(s.split()) >= 3 and s.lower() not in body:
                out.append(s)
    return out


@pytest.fixture(scope="module")
def quality_model(tmp_path_factory, truth):
    base = tmp_path_factory.mktemp("clf")
    pos = [{"text": v["articleBody"]} for v in truth.values()]
    neg = [{"text": " ".join(boilerplate(n, v["articleBody"]))} for n, v in truth.items()]
    (base / "pos.jsonl").write_text("\n".join(json.dumps(r) for r in pos) + "\n")
    (base / "neg.jsonl").write_text("\n".join(json.dumps(r) for r in neg if r["text"]) + "\n")
    raw = {"name": "news", "output": "models/quality_news.bin", "positive": "article", "chunk_words": 40,
           "labels": {"article": [{"paths": ["pos.jsonl"]}], "boilerplate": [{"paths": ["neg.jsonl"]}]},
           "params": {"epoch": 15, "seed": 1}}
    (base / "clf.yaml").write_text(yaml.safe_dump(raw))
    card = run_train(parse_classifier_config(raw, str(base)))
    return base, card


def test_quality_classifier_heldout_auc(quality_model):
    base, card = quality_model
    m = card["metrics_heldout"]
    print("held-out ROC AUC", m["roc_auc"], card["examples"])
    assert card["examples"]["heldout"] > 100
    assert m["roc_auc"] >= 0.9
    assert set(m["thresholds"]) == {"0.1", "0.3", "0.5", "0.7", "0.9"}
    saved = json.loads((base / "models" / "quality_news.bin.card.json").read_text())
    assert saved["labels"] == ["article", "boilerplate"] and saved["fasttext"].startswith("fasttext-community")
    assert len(saved["train_data_sha256"]) == 64
    # training again on the same data gives the same model
    card2 = run_train(parse_classifier_config(yaml.safe_load((base / "clf.yaml").read_text()), str(base)))
    assert card2["model_sha256"] == card["model_sha256"]


def test_roc_auc_and_prepare():
    assert roc_auc(np.array([0.9, 0.1]), np.array([True, False])) == 1.0
    assert roc_auc(np.array([0.1, 0.9]), np.array([True, False])) == 0.0
    assert prepare("Hello, World!\nNew line.") == "hello , world ! new line ."


def web_source(tmp: Path, truth, n: int = 30) -> dict:
    (tmp / "web").mkdir(exist_ok=True)
    for name in sorted(truth)[:n]:
        (tmp / "web" / f"{name}.html.gz").write_bytes((WEB / f"{name}.html.gz").read_bytes())
    return {"name": "web", "format": "html", "paths": ["web/*.html.gz"]}


def test_scores_stored_and_rethreshold_reproduces_a_fresh_run(quality_model, tmp_path, truth):
    base, _ = quality_model
    model = str(base / "models" / "quality_news.bin")
    cfg = {"sources": [web_source(tmp_path, truth)], "output": "out", "filters": {"enabled": False},
           "dedup": {"enabled": False},
           "classifiers": {"models": [{"name": "news", "path": model, "label": "article", "keep_fraction": 0.5}]}}
    first = curate(tmp_path, cfg)
    threshold = first.stats["classifier_thresholds"]["quality_news"]
    rows = read_rows(first.output, "kept") + read_rows(first.output, "rejected")
    assert all(scores_of(r["scores"])["quality_news"] is not None for r in rows)
    kept = {r["id"] for r in read_rows(first.output, "kept")}
    assert 10 <= len(kept) <= 20  # about half of 30
    assert first.stats["sources"]["web"]["rejected_by_reason"].get("classify:quality_news", 0) == 30 - len(kept)
    # move the threshold on the stored scores, and compare with a fresh run at that threshold
    new_threshold = sorted(scores_of(r["scores"])["quality_news"] for r in rows)[7]
    expected = {r["id"] for r in rows if scores_of(r["scores"])["quality_news"] >= new_threshold}
    cfg["classifiers"]["models"][0] = {"name": "news", "path": model, "label": "article", "threshold": new_threshold}
    second = curate(tmp_path, {**cfg, "output": "out2"})
    assert {r["id"] for r in read_rows(second.output, "kept")} == expected
    assert second.stats["classifier_thresholds"]["quality_news"] == pytest.approx(new_threshold)
    assert threshold > 0


def test_decontamination_catches_a_planted_eval_passage(tmp_path, truth):
    wiki = [json.loads(line)["text"] for line in gzip.open(DATA / "wiki" / "wiki.jsonl.gz", "rt")]
    passage = " ".join(wiki[3].split()[100:160])
    (tmp_path / "eval.jsonl").write_text(json.dumps({"text": passage}) + "\n")
    bodies = [truth[n]["articleBody"] for n in sorted(truth)[:3]]
    words = bodies[0].split()
    planted = " ".join(words[:80] + passage.split()[10:30] + words[80:])  # 20 words of the eval text inside a page
    with open(tmp_path / "docs.jsonl", "w") as fh:
        for t in [planted] + bodies[1:]:
            fh.write(json.dumps({"text": t}) + "\n")
    result = curate(tmp_path, {"sources": [{"name": "s", "format": "jsonl", "paths": ["docs.jsonl"]}],
                               "output": "out", "filters": {"enabled": False},
                               "decontam": {"enabled": True, "paths": ["eval.jsonl"], "ngram": 13}})
    rejected = read_rows(result.output, "rejected")
    assert [(r["locator"], r["reason"]) for r in rejected] == [("offset:0", "decontam:ngram_overlap")]
    assert "eval=eval.jsonl" in rejected[0]["detail"] and "span=" in rejected[0]["detail"]
    assert result.stats["sources"]["s"]["kept"] == 2


def test_domain_classifier_writes_the_domain_column(tmp_path):
    three_domain_pool(tmp_path)
    raw = {"name": "domains", "output": "models/domain.bin", "chunk_words": 60,
           "labels": {s: [{"pool": "pool", "sources": [s]}] for s in ("books", "code", "wiki")}}
    card = run_train(parse_classifier_config(raw, str(tmp_path)))
    assert card["positive_label"] is None and card["metrics_heldout"]["accuracy"] >= 0.9
    result = curate(tmp_path / "run", {
        "sources": [{"name": "mixed", "format": "text",
                     "paths": [str(DATA / "code" / "json__decoder.py"), str(DATA / "books" / "milton__areopagitica.txt")]}],
        "output": "out", "filters": {"enabled": False},
        "classifiers": {"domain": {"path": str(tmp_path / "models" / "domain.bin")}}})
    got = {Path(r["source_uri"]).name: r["domain"] for r in read_rows(result.output, "kept")}
    assert got == {"json__decoder.py": "code", "milton__areopagitica.txt": "books"}
    assert sorted(Classifier(str(tmp_path / "models" / "domain.bin")).labels) == ["books", "code", "wiki"]


def test_stats_show_every_filter_count(tmp_path, truth):
    result = curate(tmp_path, {"sources": [web_source(tmp_path, truth, 61)], "output": "out"})
    s = result.stats["sources"]["web"]
    filtered = {k: v for k, v in s["rejected_by_reason"].items() if k.startswith("filter:")}
    assert filtered and sum(filtered.values()) == s["stages"]["filter"]["rejected"]
    assert all(re.match(r"filter:(gopher|c4|fineweb)_\w+$", k) for k in filtered)
    rejected = [r for r in read_rows(result.output, "rejected") if r["reason"].startswith("filter:")]
    assert all("needs" in r["detail"] and "=" in r["detail"] for r in rejected)
    assert "langid:fasttext" in result.manifest["models"]
