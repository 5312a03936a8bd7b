"""readability's faster steps (pipelines/extract/readability_steps.py) leave the tree exactly as trafilatura's own
steps do, step by step and for readability's whole output, on the committed real pages and on generated pages
built around what the steps read (class and id words, block tags and tags that only start like one, nested
divs, loose text and tails, <br>s)."""
from __future__ import annotations

from copy import deepcopy

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml.etree import tostring

from pipelines.extract import html as html_path
from pipelines.extract import readability_steps
from tests.test_fast_paths import PAGES


def _document(tree):
    from trafilatura.readability_lxml import Document

    return Document(tree, min_text_length=25)


def _same_steps(tree) -> None:
    """Each step, and the whole summary, by trafilatura and by the stand-ins, on copies of `tree`."""
    from trafilatura.readability_lxml import Document

    ours, theirs = _document(deepcopy(tree)), _document(deepcopy(tree))
    for doc in (ours, theirs):
        for elem in list(doc.doc.iter("script", "style", "fencedframe")):
            elem.drop_tree()
    for name in ("remove_unlikely_candidates", "transform_misused_divs_into_paragraphs"):
        getattr(Document, name)(theirs)
        getattr(readability_steps, name)(ours)
        assert tostring(ours.doc) == tostring(theirs.doc), name
    for elem in theirs.doc.iter("*"):
        assert readability_steps.class_weight(ours, elem) == Document.class_weight(theirs, elem)
    expected = _document(deepcopy(tree)).summary()
    with readability_steps.installed():
        assert _document(deepcopy(tree)).summary() == expected


def test_the_stand_ins_are_in_place_for_the_shipped_trafilatura():
    from trafilatura.readability_lxml import Document

    assert len(readability_steps.swaps()) == 3
    original = Document.class_weight
    with readability_steps.installed():
        assert Document.class_weight is readability_steps.class_weight
    assert Document.class_weight is original


def test_a_method_whose_source_changed_keeps_trafilaturas_own(monkeypatch):
    monkeypatch.setattr(readability_steps, "_SWAPS", None)
    monkeypatch.setitem(readability_steps._WRITTEN_FOR, "class_weight", "0" * 16)
    kept = {swap.key for swap in readability_steps.swaps()}
    assert kept == {"remove_unlikely_candidates", "transform_misused_divs_into_paragraphs"}
    monkeypatch.setattr(readability_steps, "_SWAPS", None)


def test_same_steps_on_real_pages():
    trees = [t for t in (html_path._parse(html_path.unwrap_lines(p)) for p in PAGES) if t is not None]
    assert len(trees) > 100
    for tree in trees:
        _same_steps(tree)


_TAGS = ["div", "p", "a", "span", "td", "table", "ul", "li", "br", "article", "aside", "address", "audio", "img",
         "dl", "ol", "pre", "picture", "param", "abbr", "section", "header", "footer", "nav", "body", "html",
         "blockquote", "divider", "paragraph-x", "dd", "form", "h2"]
_ATTRS = ["", " class='comment'", " id='content'", " class='sidebar main'", " class='post entry'",
          " class='menu'", " id='footer'", " class='header column'", " class='x'", " class=''", " id='a'",
          " class='Comment-List' id='Main'", " class='ad-break'", " class='related tags'", " id='disqus'"]
_TEXT = ["", "words and more words, here.", " ", "\n", "a, b, c, d, e, f, g, h, i, j, k", "x" * 90, "\u00a0"]
MARKUP = st.recursive(
    st.sampled_from(_TEXT),
    lambda inner: st.builds(lambda tag, attrs, kids, tail: f"<{tag}{attrs}>{''.join(kids)}</{tag}>" + tail,
                            st.sampled_from(_TAGS), st.sampled_from(_ATTRS), st.lists(inner, max_size=4),
                            st.sampled_from(_TEXT)),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(MARKUP, min_size=1, max_size=6), st.sampled_from(_ATTRS))
def test_same_steps_on_generated_pages(parts, body_attrs):
    tree = html_path._parse(f"<html><head><title>t</title></head><body{body_attrs}>{''.join(parts)}</body></html>")
    if tree is not None:
        _same_steps(tree)
