"""The extractor's faster steps against the plain definitions they replace: the same strings, elements and numbers
(hypothesis chooses inputs; the committed pages are the real ones)."""
from __future__ import annotations

import gzip
import math
import re
import unicodedata
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from trafilatura.utils import repair_faulty_html

from classifiers.boosted_trees import fit_regression, predict, predict_many
from pipelines.extract import html as html_path
from pipelines.extract import page_lines, page_region, route
from pipelines.read.charsets import decode_html
from pipelines.text import normalize

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent
WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]
SETTINGS = SimpleNamespace(route=True, metadata=False, metadata_search=False, include_comments=False,
                           include_tables=True, favor_precision=False, favor_recall=False, fast=False)


def _raw_pages() -> list[str]:
    files = sorted((DATA / "wcxb").rglob("*.html.gz")) + sorted((DATA / "modern" / "html").glob("*.html.gz"))
    files += sorted((ROOT / "examples" / "data" / "web").glob("*.html.gz"))
    return [decode_html(gzip.open(f).read())[0] for f in files]


PAGES = _raw_pages()
TEXT = st.text(alphabet=st.sampled_from(WHITESPACE + list("aZé\ufb01.,$1\r\n\t ")), max_size=40)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_normalize_is_the_regex_definition(text):
    assert normalize(text) == re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_line_breaks_become_one_space_a_run(text):
    assert html_path._spaces_for_breaks(text) == re.sub(r"[\r\n]+", " ", text)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_spaces_collapse_as_the_region_regex_says(text):
    assert page_region._collapse_spaces(text) == page_region._SPACES.sub(" ", text)


PIECES = ["<!DOCTYPE html/>", "<!doctype html>", "<html lang=en/>", "<html/>", "<html>", "\n", "\r\n", "x", "\x00",
          "\x0b", "\x1f", "\ufffe", "\uffff", "é", "\ud800", " /", ">", "<", "\t", "<p>a</p>"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_repair_is_trafilaturas(pieces):
    page = "".join(pieces)
    assert html_path._repair(page, page[:50].lower()) == repair_faulty_html(page, page[:50].lower())


def test_repair_and_unwrapping_on_real_pages():
    for page in PAGES:
        assert html_path._repair(page, page[:50].lower()) == repair_faulty_html(page, page[:50].lower())
        assert html_path.unwrap_lines(page) == _unwrap_reference(page)


def _unwrap_reference(page: str) -> str:
    """Line breaks made spaces outside the verbatim elements, by regex."""
    out, at = [], 0
    while (start := html_path._VERBATIM.search(page, at)) is not None:
        out.append(re.sub(r"[\r\n]+", " ", page[at:start.start()]))
        end = html_path._CLOSE[start.group(1).lower()].search(page, start.end())
        if end is None:
            return "".join(out) + page[start.start():]
        out.append(page[start.start():end.end()])
        at = end.end()
    return "".join(out) + re.sub(r"[\r\n]+", " ", page[at:])


def _bodies() -> list:
    out = []
    for page in PAGES:
        tree = html_path._parse(html_path.unwrap_lines(page))
        if tree is not None:
            body = tree.find(".//body")
            out.append(tree if body is None else body)
    return out


def test_region_selects_the_nodes_a_full_walk_selects():
    """_strip picks what to drop and what may be chrome in C; a walk over every node picks the same, in order."""
    bodies = _bodies()
    assert len(bodies) > 100
    for body in bodies:
        dropped = [el for el in body.iter() if not isinstance(el.tag, str) or el.tag.lower() in page_region._DROP_TAGS]
        assert list(body.iter(*page_region._DROPPED)) == dropped
        chrome = [el for el in body.iter() if page_region._chrome(el)]
        picked = [el for el in page_region._MAYBE_CHROME(body) if page_region._chrome(el)]
        assert len(picked) == len(chrome) and all(a is b for a, b in zip(picked, chrome))


def _line_features_reference(lines, text):
    """Each line's features one line at a time, as page_lines defines them."""
    n, traf = len(lines), page_lines.words(text)
    in_traf = [1.0 if (w := page_lines.words(line.text)) and w in traf else 0.0 for line in lines]
    lengths = [len(line.text) for line in lines]
    short = [1.0 if length < 30 else 0.0 for length in lengths]
    to_traf, runs, repeats = page_lines._distances(in_traf), page_lines._runs(short), Counter(x.text for x in lines)
    total = max(sum(lengths), 1)
    page = [math.log1p(n), len(text) / total, sum(in_traf) / max(n, 1)]
    out, before = [], 0
    for i, line in enumerate(lines):
        tokens = line.text.split()
        tag = [0.0] * len(page_region.TAGS)
        tag[line.tag] = 1.0
        out.append([
            math.log1p(lengths[i]), float(len(tokens)), float(bool(re.search(r"[.!?:;\"”)]$", line.text))),
            sum(t[:1].isupper() for t in tokens) / max(len(tokens), 1),
            sum(c.isdigit() for c in line.text) / max(lengths[i], 1), in_traf[i], float(to_traf[i]), i / n,
            before / total, math.log1p(repeats[line.text]),
            math.log1p(lengths[i - 1]) if i else -1.0, math.log1p(lengths[i + 1]) if i + 1 < n else -1.0,
            in_traf[i - 1] if i else -1.0, in_traf[i + 1] if i + 1 < n else -1.0, math.log1p(runs[i]), short[i],
            float(bool(page_lines._CHROME_WORDS.search(line.text))), float(bool(page_lines._CURRENCY.search(line.text))),
            float(bool(page_lines._DATE.search(line.text))), line.text.count(",") / max(len(tokens), 1),
            *page, line.links, lines[i - 1].links if i else -1.0, lines[i + 1].links if i + 1 < n else -1.0, *tag,
        ])
        before += lengths[i]
    return out


# pieces of lines the chrome and date patterns read, in both cases, with the characters whose case folding is
# not ASCII's (the long s and the Kelvin sign fold to s and k; the dotted capital I lower-cases to two characters)
LINE_PIECES = ["log in", "LOGIN", "Sign Up", "share", "SHARE", "ſhare", "coo\u212aies", "ago", "AGO", "2024", "1899",
               "12/31/99", "3.4.2021", "menu", "İ", "ﬁ", " ", "x", "é", ".", "-", "/", "1"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(LINE_PIECES), max_size=6).map("".join), max_size=6))
def test_case_blind_flags_are_the_case_blind_search(texts):
    for pattern in (page_lines._CHROME_WORDS, page_lines._DATE):
        assert page_lines._found(pattern, texts) == [float(bool(pattern.search(t))) for t in texts]


def test_line_columns_and_scores_on_real_pages():
    """The columnar line features are the per-line definition, number for number, and the batched scores are
    the line model's scores one line at a time."""
    model = route.load()
    checked = 0
    for page in PAGES[::3]:
        _, text, lines, _ = html_path.views(page, None, SETTINGS)
        if not lines:
            continue
        reference = _line_features_reference(lines, text)
        assert page_lines.line_features(lines, text) == reference
        x = route.features(html_path.unwrap_lines(page), text, "\n".join(line.text for line in lines))
        one_by_one = [predict(model["lines"], row + x)[0] for row in reference]
        assert page_lines.scores(lines, text, x, model["lines"]) == one_by_one
        checked += 1
    assert checked > 30
    assert page_lines.line_columns([], "text").shape == (0, len(page_lines.NAMES))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.floats(-5, 5), st.just(math.nan)), min_size=3, max_size=3), min_size=1,
                max_size=20))
def test_predict_many_is_predict_bit_for_bit(rows):
    model = _FITTED
    assert predict_many(model, rows) == [predict(model, row) for row in rows]


def _fitted() -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + (np.nan_to_num(X[:, 1]) > 0.3) + rng.normal(scale=0.1, size=400)
    return fit_regression(X, y, rounds=30, depth=3, min_leaf=5)


_FITTED = _fitted()


def test_predict_many_with_the_shipped_softmax_model():
    model = route.load()["page_type"]
    rows = [[((i * 7 + j * 3) % 11) * 0.4 - 1.0 for j in range(len(model_width(model)))] for i in range(25)]
    assert predict_many(model, rows) == [predict(model, row) for row in rows]
    assert predict_many(model, []) == []


def model_width(model: dict) -> list:
    """As many zeros as the model reads features."""
    def deepest(tree) -> int:
        return max(int(tree[0]), deepest(tree[2]), deepest(tree[3])) if isinstance(tree, list) else -1
    return [0.0] * (1 + max(deepest(t) for trees in model["trees"] for t in trees))


def _same_justext(root) -> None:
    from copy import deepcopy

    from lxml.etree import tostring
    from trafilatura import external

    from pipelines.extract import justext_walk

    from justext.core import ParagraphMaker, classify_paragraphs, revise_paragraph_classification

    assert tostring(justext_walk.try_justext(deepcopy(root), None, None)) == \
        tostring(external.try_justext(deepcopy(root), None, None))
    ours, theirs = justext_walk.make_paragraphs(root), ParagraphMaker.make_paragraphs(root)
    stoplist = external.JT_STOPLIST or external.jt_stoplist_init()
    for made in (ours, theirs):
        classify_paragraphs(made, stoplist, 50, 150, 0.1, 0.2, 0.25, True)
        revise_paragraph_classification(made, 150)
    assert [(p.text, p.dom_path, p.chars_count_in_links, p.tags_count, p.cf_class, p.class_type) for p in ours] == \
        [(p.text, p.dom_path, p.chars_count_in_links, p.tags_count, p.cf_class, p.class_type) for p in theirs]


def test_justext_paragraphs_on_real_pages():
    from trafilatura.baseline import basic_cleaning

    trees = [t for t in (html_path._parse(html_path.unwrap_lines(p)) for p in PAGES) if t is not None]
    assert len(trees) > 30
    kept = 0
    for tree in trees:
        _same_justext(basic_cleaning(tree))
        kept += len(tree.xpath("//p")) > 0
    assert kept > 30


MARKUP = st.recursive(
    st.sampled_from(["hello there", " ", "\n", "the and of", "\u00a9 2024", "x\r\ny", "", "\u2028a b\t"]),
    lambda inner: st.tuples(st.sampled_from(["div", "p", "a", "br", "span", "h2", "select", "li", "b", "!--"]),
                            st.lists(inner, max_size=4), st.sampled_from(["", "tail words", " \n "])),
    max_leaves=30)


def _element(node):
    from lxml import etree

    if isinstance(node, str):
        return node
    tag, children, tail = node
    element = etree.Comment("c") if tag == "!--" else etree.Element(tag)
    last = None
    for child in children:
        made = _element(child)
        if isinstance(made, str):
            if last is None and tag != "!--":
                element.text = (element.text or "") + made
            elif last is not None:
                last.tail = (last.tail or "") + made
        elif tag != "!--":
            element.append(made)
            last = made
    element.tail = tail or None
    return element


@settings(max_examples=300, deadline=None)
@given(st.lists(MARKUP, min_size=1, max_size=5))
def test_justext_paragraphs_on_generated_trees(nodes):
    from lxml import etree

    body = etree.Element("body")
    body.text = "lead text of the page and the rest"
    for node in nodes:
        made = _element(node)
        if isinstance(made, str):
            body.text += made
        else:
            body.append(made)
    _same_justext(body)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_justext_whitespace_is_justexts(text):
    from justext.utils import normalize_whitespace

    from pipelines.extract import justext_walk

    assert justext_walk.normalize_whitespace(text) == normalize_whitespace(text)
