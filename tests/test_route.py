"""The page router: its boosted trees, its features, the shipped model on WCXB pages, and training it."""
from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers import page_route
from classifiers.boosted_trees import _predict_rows, fit_regression, fit_softmax, predict, predict_proba, predict_tree
from pipelines.config.extract import HtmlSettings
from pipelines.extract import route
from pipelines.extract.html import extract_html, extractor_version
from pipelines.extract.page_features import NAMES as PAGE_NAMES
from pipelines.read.charsets import decode_html
from pipelines.text import word_prf

WCXB = Path(__file__).parent / "data" / "wcxb"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=30, max_size=80), st.integers(0, 3))
def test_regression_trees_fit_what_they_can_and_agree_row_by_row(points, depth):
    import numpy as np

    X = np.array(points)
    y = (X[:, 0] > 0.5).astype(float) + 0.1 * X[:, 1]
    model = fit_regression(X, y, rounds=30, depth=depth, rate=0.3, min_leaf=3)
    json.loads(json.dumps(model))  # stored as JSON
    fitted = np.array([predict(model, x)[0] for x in X])
    assert np.mean((fitted - y) ** 2) <= np.mean((y - y.mean()) ** 2) + 1e-9
    tree = model["trees"][0][-1]
    assert np.allclose(_predict_rows(tree, X), [predict_tree(tree, x) for x in X])
    # the compiled model and the tree walk agree, a missing value included
    for x in list(X[:10]) + [[math.nan, 0.0], [0.6, math.nan]]:
        walked = model["base"][0] + sum(predict_tree(t, x) for t in model["trees"][0])
        assert predict(model, x)[0] == pytest.approx(walked, abs=1e-12)


def test_a_missing_feature_goes_left_in_fitting_and_in_prediction():
    import numpy as np

    X = np.array([[v] for v in [1.0, 2.0, 3.0] * 5 + [10.0, 11.0, 12.0] * 5 + [math.nan] * 6])
    y = np.array([0.0] * 15 + [1.0] * 15 + [0.0] * 6)
    model = fit_regression(X, y, rounds=50, depth=1, rate=0.5, min_leaf=2)
    assert predict(model, [math.nan])[0] == pytest.approx(predict(model, [1.0])[0])
    assert predict(model, [11.0])[0] > 0.8


def test_softmax_trees_separate_classes():
    rows = [[float(i % 3), float(i % 7)] for i in range(90)]
    labels = ["a" if x[0] == 0 else "b" if x[0] == 1 else "c" for x in rows]
    model = fit_softmax(rows, labels, rounds=30, min_leaf=3)
    proba = predict_proba(model, [2.0, 1.0])
    assert max(proba, key=proba.get) == "c" and sum(proba.values()) == pytest.approx(1.0)


def test_features_follow_the_names_and_read_the_markup():
    html = ('<html><head><meta property="og:type" content="product"><script type="application/ld+json">'
            '{"@type": "Product"}</script></head><body><div class="price">$ 12</div><a href="/">Home</a></body></html>')
    x = route.features(html, "Kettle", "Kettle\n$ 12")
    named = dict(zip(route.NAMES, x))
    assert len(x) == route.PAGE == len(route.NAMES) - len(route.FILTERED_NAMES) and all(math.isfinite(v) for v in x)
    assert named["ld_product"] == 1.0 and named["og_product"] == 1.0 and named["og_none"] == 0.0
    assert named["w_price"] > 0 and named["region_currency"] == 1.0


def test_a_model_for_other_features_is_refused(tmp_path):
    stale = copy.deepcopy(route.load())
    stale["names"] = stale["names"][:-1]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(stale))
    with pytest.raises(ValueError, match="trained on other features.*train it again"):
        route.load(str(path))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text("abcdef ", min_size=1, max_size=12), st.floats(-0.2, 1.2)), min_size=1, max_size=30),
       st.floats(0.05, 1.0, exclude_max=True), st.floats(0.1, 10.0))
def test_the_filtered_view_cuts_below_the_page_best_line(scored, relative, scale):
    """A line is kept where its score is above `relative` times the page's best score: with a share under 1, the
    page's best line is kept where it scores above zero, however low, and scaling every score keeps the same
    lines."""
    lines = [f"{i} {text}" for i, (text, _) in enumerate(scored)]  # each line its own text: no repeats
    scores = [score for _, score in scored]
    text, said = route.filtered_view("", "\n".join(lines), lines, scores, relative)
    best = max(scores)
    kept = [line for line, score in zip(lines, scores) if best > 0 and score > relative * best]
    assert text == "\n".join(kept)
    assert (lines[scores.index(best)] in text.split("\n")) == (best > 0)
    assert len(said) == len(route.FILTERED_NAMES)
    if best > 0:
        assert route.filtered_view("", "", lines, [s * scale for s in scores], relative)[0] == text


def test_a_model_with_an_absolute_line_threshold_is_refused(tmp_path):
    old = copy.deepcopy(route.load())
    old["threshold"] = old.pop("relative_threshold")  # router 8 and before: one threshold for every page
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="train it again"):
        route.load(str(path))


def test_a_model_without_the_pre_classifier_is_refused(tmp_path):
    old = copy.deepcopy(route.load())
    del old["pre"]  # router 11 and before: trafilatura's fallbacks ran on every page
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="train it again"):
        route.load(str(path))


@pytest.mark.parametrize("shop, article, runs", [
    (0.95, 0.05, False),  # surely a shop's or a service's page: trafilatura without its fallbacks
    (0.91, 0.09, False),  # ...just over FAST_AT
    (0.85, 0.15, True),   # not sure enough
    (0.0, 1.0, True),     # an article
])
def test_fallbacks_are_left_out_only_where_the_markup_surely_makes_a_shop_or_service(shop, article, runs):
    """The pre classifier's probabilities of the FAST_TYPES count together: half a product, half a service."""
    probabilities = [shop / 2, shop / 2, article]
    base = [math.log(p) if p > 0 else -50.0 for p in probabilities]
    pre = {"kind": "softmax", "classes": ["product", "service", "article"], "base": base, "trees": [[], [], []]}
    assert route.fallbacks([0.0] * len(PAGE_NAMES), {"pre": {"page_type": pre}}) == runs


def test_extract_html_runs_trafilatura_as_the_pre_classifier_says(wcxb_pages, monkeypatch):
    """With the router on, trafilatura runs without its fallbacks exactly where route.fallbacks says so of the
    page's markup features; with it off, or with `fast`, as the settings say."""
    from pipelines.extract import html as html_extract
    from pipelines.extract.page_features import html_features

    model, seen, left_out = route.load(), [], []
    real = html_extract._trafilatura
    monkeypatch.setattr(html_extract, "_trafilatura",
                        lambda tree, url, s, fast: seen.append(fast) or real(tree, url, s, fast))
    for page in wcxb_pages:
        html, _ = decode_html(page["raw"])
        fast = not route.fallbacks(html_features(html_extract.unwrap_lines(html)), model)
        out = extract_html(html, page["url"], HtmlSettings())
        assert seen[-1] == fast and out["html_text"] in route.VIEWS + ("declared",)
        if fast:
            left_out.append(page["type"])
        extract_html(html, page["url"], HtmlSettings(route=False))
        assert seen[-1] is False
        extract_html(html, page["url"], HtmlSettings(fast=True))
        assert seen[-1] is True
    # six pages of each type: the shops' and services' pages are picked out, no article or forum thread is
    assert len(left_out) >= 6 and set(left_out) <= set(route.FAST_TYPES), left_out


@pytest.fixture(scope="module")
def wcxb_pages() -> list[dict]:
    return list(page_route.wcxb_pages(WCXB))


def test_the_shipped_router_on_wcxb_pages(wcxb_pages):
    """42 WCXB dev pages, six of each type (in the router's training set: this checks the shipped model works
    as trained; the cross-validated figures are in benchmarks/README.md)."""
    assert len(wcxb_pages) == 42 and len({p["site"] for p in wcxb_pages}) == 42
    routed, alone, typed = [], [], 0
    for page in wcxb_pages:
        html, _ = decode_html(page["raw"])
        out = extract_html(html, page["url"], HtmlSettings())
        routed.append(word_prf(out["text"], page["gold"])[2])
        alone.append(word_prf(extract_html(html, page["url"], HtmlSettings(route=False))["text"], page["gold"])[2])
        typed += out["page_type"] == page["type"]
        assert out["page_type"] in page_route.TYPES and 0.0 <= out["extract_confidence"] <= 1.0
    mean_routed, mean_alone = sum(routed) / 42, sum(alone) / 42
    print(f"WCXB subset word F1: routed {mean_routed:.3f}, trafilatura alone {mean_alone:.3f}, type {typed}/42")
    assert mean_routed >= mean_alone + 0.02
    assert typed >= 30


def test_training_cross_validates_by_site_and_writes_a_model_the_router_loads(wcxb_pages, tmp_path):
    rows = [page_route.measure(p) for p in wcxb_pages]
    assert all(len(r["line_x"]) == len(r["line_y"]) == len(r["lines"]) for r in rows)
    assert {y for r in rows for y in r["line_y"]} == {0.0, 1.0}  # each kind of line is on these pages
    forked = [{**r, "f1": dict(r["f1"])} for r in rows]
    page_route.add_filtered(rows, folds=3)
    assert all(set(r["f1"]) == set(route.VIEWS) and len(r["x"]) == len(route.NAMES) for r in rows)
    page_route.add_filtered(forked, folds=3, processes=2)  # the folds fitted in two processes: the same rows
    assert [(r["x"], r["f1"]) for r in forked] == [(r["x"], r["f1"]) for r in rows]
    checked = page_route.cross_validate(rows, folds=3)
    assert page_route.cross_validate(rows, folds=3, processes=3) == checked
    assert sorted(r["name"] for r in checked) == sorted(r["name"] for r in rows)
    summary = page_route.report(checked)
    assert summary["all"]["pages"] == 42
    assert 0.0 < summary["all"]["routed_sd"] < 0.1  # 42 pages of 40-odd sites: a few points either way
    assert summary["all"]["best"] >= max(summary["all"][view] for view in route.VIEWS)
    model = page_route.fit(rows)
    assert set(model["pre"]["page_type"]["classes"]) == {r["type"] for r in rows}  # fitted on these pages' types
    path = tmp_path / "route.json"
    path.write_text(json.dumps(model))
    loaded = route.load(str(path))
    assert route.route(rows[0]["x"], loaded).view in route.VIEWS
    html, _ = decode_html(wcxb_pages[0]["raw"])
    extracted = extract_html(html, wcxb_pages[0]["url"], HtmlSettings())  # the shipped model, end to end
    assert extracted["html_text"] in route.VIEWS and extracted["text"]
    # and the one just trained, as a user's config names it
    own = HtmlSettings(route_model=str(path))
    assert extract_html(html, wcxb_pages[0]["url"], own)["html_text"] in route.VIEWS + ("declared",)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert extractor_version(own) == extractor_version(HtmlSettings()) + f" (route.json {digest})"


def test_a_router_model_of_ones_own_makes_the_decisions(wcxb_pages, tmp_path):
    """A model whose type classifiers always say `forum` (the gate's too, so no page is gated as an article):
    every page extracted with it is typed a forum, where the shipped model types most of them otherwise; and an
    extractor of that setting says so in its version, in the sandboxed child as in process."""
    from pipelines.config.extract import ExtractSettings
    from pipelines.extract.extract import HtmlExtractor

    forum = {"kind": "softmax", "classes": ["forum", "article"], "base": [0.0, -20.0], "trees": [[], []]}
    own = copy.deepcopy(route.load())
    own["page_type"], own["gate"]["page_type"] = forum, forum
    path = tmp_path / "forum.json"
    path.write_text(json.dumps(own))
    settings = HtmlSettings(route_model=str(path))
    shipped = [extract_html(decode_html(p["raw"])[0], p["url"], HtmlSettings())["page_type"] for p in wcxb_pages[:8]]
    mine = [extract_html(decode_html(p["raw"])[0], p["url"], settings)["page_type"] for p in wcxb_pages[:8]]
    assert mine == ["forum"] * 8 and shipped.count("forum") < 4
    extractor = HtmlExtractor(ExtractSettings(html=settings))
    try:
        assert extractor.version.endswith(f" (forum.json {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})")
        page = wcxb_pages[0]
        status, out = extractor(decode_html(page["raw"])[0], page["url"])
        assert status == "ok" and out["page_type"] == "forum", (status, out)
    finally:
        extractor.close()


def test_the_gate_decides_as_the_router_does_without_making_the_region(wcxb_pages, monkeypatch):
    """Where the gate keeps trafilatura's text, the router given every feature keeps the same text with the same
    confidence; extract_html then never makes the region. Elsewhere extract_html routes as route.route does."""
    from pipelines.extract import html as html_extract

    model = route.load()
    expected, gated = {}, set()
    for page in wcxb_pages:
        html, _ = decode_html(page["raw"])
        unwrapped, text, lines, _ = html_extract.views(html, page["url"], HtmlSettings())
        x, texts = route.views(unwrapped, text, lines, model)
        chosen = route.route(x, model)
        expected[page["name"]] = (chosen, texts[chosen.view])
        if route.gate([x[i] for i in route.GATE], model) is not None:
            gated.add(page["name"])
            assert chosen.view == "trafilatura" and chosen.page_type == "article"
    assert 5 <= len(gated) < len(wcxb_pages)  # six articles among the 42 pages; the gate passes the others on

    made = []
    real_region = html_extract._region
    monkeypatch.setattr(html_extract, "_region", lambda *a: made.append(1) or real_region(*a))
    for page in wcxb_pages:
        html, _ = decode_html(page["raw"])
        before = len(made)
        out = extract_html(html, page["url"], HtmlSettings())
        chosen, text = expected[page["name"]]
        assert (out["html_text"], out["page_type"], out["extract_confidence"]) == (chosen.view, chosen.page_type,
                                                                                   chosen.confidence)
        assert out["text"] == text
        assert (len(made) == before) == (page["name"] in gated)


def _constant(value: float) -> dict:
    return {"kind": "regression", "base": [value], "trees": [[]]}


def _types(article: float) -> dict:
    """A type classifier that gives every page this probability of an article (and the rest to forum)."""
    return {"kind": "softmax", "classes": ["article", "forum"], "base": [math.log(article / (1 - article)), 0.0],
            "trees": [[], []]}


@pytest.mark.parametrize("article, region_gain, filtered_gain, filtered_chars, kept", [
    (0.95, 0.3, 0.0, 5.0, "region"),         # a sure article: the region only where trafilatura kept almost nothing
    (0.95, 0.3, 0.0, 5.0, "trafilatura"),    # ...and trafilatura kept more than a tenth of it
    (0.2, -0.3, -0.2, 5.0, "filtered"),      # lines scored: filtered (not trafilatura, whatever the gains)
    (0.2, -0.05, -0.2, 5.0, "region"),       # ...unless the region gains clearly more (REGION_OVER_FILTERED)
    (0.2, 0.15, 0.08, 5.0, "filtered"),
    (0.2, 0.25, 0.1, 5.0, "region"),
    (0.2, -0.1, -0.3, 0.0, "trafilatura"),   # no line scored as content: trafilatura, or the region where it gains
    (0.2, 0.1, 0.3, 0.0, "region"),
])
def test_the_choice_among_three_views(article, region_gain, filtered_gain, filtered_chars, kept):
    model = {"margin": 0.0, "choice": {"region": _constant(region_gain), "filtered": _constant(filtered_gain)},
             "quality": {view: _constant(0.5) for view in route.VIEWS}, "page_type": _types(article),
             "gate": {"page_type": _types(0.5), "quality": _constant(0.9)}}  # a gate never sure: it passes
    x = [0.0] * len(route.NAMES)
    x[route.NAMES.index("traf_over_region")] = 0.05 if kept != "trafilatura" or article < 0.9 else 0.5
    x[route.NAMES.index("log_filtered_chars")] = filtered_chars
    chosen = route.route(x if article < 0.9 else x[:route.PAGE], model)
    assert chosen.view == kept and chosen.confidence == 0.5
    assert chosen.page_type == ("article" if article > 0.5 else "forum")


@pytest.mark.parametrize("article, chars, gated", [
    (0.97, 800, True),    # surely an article, and trafilatura kept a text of some length: its text, as the gate says
    (0.97, 300, False),   # ...a short text: the other views are made and the router decides
    (0.9, 800, False),    # not sure enough for the gate
])
def test_the_gate(article, chars, gated):
    model = {"margin": 0.0, "choice": {"region": _constant(0.3), "filtered": _constant(0.3)},
             "quality": {view: _constant(0.5) for view in route.VIEWS}, "page_type": _types(0.2),
             "gate": {"page_type": _types(article), "quality": _constant(0.9)}}
    x = [0.0] * len(route.NAMES)
    x[route.NAMES.index("log_traf_chars")] = math.log1p(chars)
    x[route.NAMES.index("log_filtered_chars")] = 5.0
    chosen = route.route(x, model)
    assert route.gate([x[i] for i in route.GATE], model) == (chosen if gated else None)
    assert chosen == (("trafilatura", "article", 0.9) if gated else ("filtered", "forum", 0.5))


def test_the_spread_resamples_sites_not_pages():
    # two sites of one page each, F1 1 and 0: the resampled mean is 1, 0.5 or 0 (1/4, 1/2, 1/4), sd sqrt(1/8)
    assert page_route.site_spread([("a", 1.0), ("b", 0.0)], draws=20000) == pytest.approx(0.354, abs=0.01)
    # three pages of site a move together: 1, 0.75 or 0 (sd 0.375), where resampling pages would give 0.217
    assert page_route.site_spread([("a", 1.0)] * 3 + [("b", 0.0)], draws=20000) == pytest.approx(0.375, abs=0.01)
    assert page_route.site_spread([("a", 1.0), ("a", 0.0)]) == 0.0  # one site: nothing to resample


def test_training_without_pages_is_one_clear_error(capsys):
    with pytest.raises(SystemExit):
        page_route.main(["train", "--out", "x.json"])
    assert "give --wcxb or --pages" in capsys.readouterr().err
