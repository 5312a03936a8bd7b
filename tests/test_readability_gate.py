"""The readability gate (pipelines/extract/readability_gate.py): its bound is never below the length of
readability's own text and leaves the tree as it was, and trafilatura gives the same result with the gate as
without it, on the committed real pages and on generated pages built to break the bound (raw-text elements,
iframes, character references that decode to controls or whitespace, entities)."""
from __future__ import annotations

import contextlib
from copy import deepcopy
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml.etree import tostring

from pipelines.extract import html as html_path
from pipelines.extract import readability_gate
from tests.test_fast_paths import PAGES


def _readability_length(tree) -> int:
    """The length compare_extraction measures: trafilatura's trim of readability's text."""
    from trafilatura.external import try_readability
    from trafilatura.utils import trim

    return len(trim(tostring(try_readability(tree), method="text", encoding="utf-8").decode("utf-8")))


def _checked(tree) -> int | None:
    """The bound, checked against readability's text; the tree is as it was (the bound is read from the page's
    own tree, which trafilatura goes on using)."""
    before = tostring(tree)
    most = readability_gate.bound(tree)
    assert tostring(tree) == before
    if most is not None:
        assert _readability_length(deepcopy(tree)) <= most
    return most


def _extract(html: str, gate: bool, focus: str = "balanced") -> dict:
    settings_ = SimpleNamespace(route=False, metadata=False, metadata_search=False, include_comments=False,
                                include_tables=True, favor_precision=focus == "precision",
                                favor_recall=focus == "recall", fast=False)
    installed = readability_gate.installed
    if not gate:
        readability_gate.installed = contextlib.nullcontext
    try:
        return html_path.extract_html(html, None, settings_)
    finally:
        readability_gate.installed = installed


def test_bound_holds_and_text_is_the_same_on_real_pages():
    trees = [t for t in (html_path._parse(html_path.unwrap_lines(p)) for p in PAGES) if t is not None]
    bounded = [most for most in map(_checked, trees) if most is not None]
    assert len(bounded) > 0.9 * len(trees) > 100
    skipped = 0
    for page in PAGES[::3]:
        calls = []
        original = readability_gate.cannot_win

        def counted(*args):
            calls.append(original(*args))
            return calls[-1]

        readability_gate.cannot_win = counted
        try:
            assert _extract(page, gate=True) == _extract(page, gate=False)
        finally:
            readability_gate.cannot_win = original
        skipped += any(calls)
    assert skipped > 10  # the gate did leave readability out on real pages


def test_gate_opens_only_in_balanced_mode_and_for_a_text():
    options = SimpleNamespace(focus="balanced", min_extracted_size=250)
    tree = html_path._parse("<html><body><p>" + "words of the page " * 20 + "</p></body></html>")
    body = tree.find(".//body")
    text = "words of the page " * 20
    assert readability_gate.cannot_win(deepcopy(tree), body, text, options)
    assert not readability_gate.cannot_win(deepcopy(tree), body, "", options)
    assert not readability_gate.cannot_win(deepcopy(tree), body, text[:100], options)  # could be over twice
    for focus in ("recall", "precision"):
        assert not readability_gate.cannot_win(deepcopy(tree), body, text, SimpleNamespace(
            focus=focus, min_extracted_size=250))


_PIECES = ["words and more words", " ", "\n", "\u00a0", "\u2003", "&amp;", "&lt;b&gt;", "&#12;", "&#133;",
           "&#x85;", "&#0;", "&#x1c;", "&#128;", "a,b,c,", "VIDEO", "\t x \r\n"]
_TAGS = ["div", "p", "a", "td", "span", "h2", "li", "ul", "table", "br", "article", "section", "form",
         "xmp", "noembed", "noframes", "plaintext", "textarea", "title", "noscript", "script", "style",
         "iframe src='https://www.youtube.com/embed/x'", "iframe src='/ad'", "template", "select", "pre"]
_CLASSES = ["", " class='comment'", " id='content'", " class='sidebar main'", " class='post entry'"]
MARKUP = st.recursive(
    st.lists(st.sampled_from(_PIECES), max_size=4).map("".join),
    lambda inner: st.builds(lambda tag, attrs, kids, tail: f"<{tag}{attrs}>{''.join(kids)}</{tag.split()[0]}>"
                            + tail, st.sampled_from(_TAGS), st.sampled_from(_CLASSES), st.lists(inner, max_size=4),
                            st.sampled_from(["", " tail text ", "&#160;"])),
    max_leaves=40)


@settings(max_examples=250, deadline=None)
@given(st.lists(MARKUP, min_size=1, max_size=6), st.integers(0, 3))
def test_bound_and_text_on_generated_pages(parts, lead):
    html = "<html><head><title>t</title></head><body>" + "<p>lead paragraph, of words.</p>" * lead \
        + "".join(parts) + "</body></html>"
    tree = html_path._parse(html)
    if tree is not None:
        _checked(tree)
    for focus in ("balanced", "recall"):
        assert _extract(html, gate=True, focus=focus) == _extract(html, gate=False, focus=focus)


@pytest.mark.parametrize("inside", ["<xmp>a &amp; b</xmp>", "<p>a &#12; b</p>", "<noembed>x</noembed>"])
def test_pages_whose_text_could_change_are_not_bounded(inside):
    tree = html_path._parse(f"<html><body><div>{inside}</div></body></html>")
    assert readability_gate.bound(tree) is None


def test_a_kept_video_iframe_is_within_the_bound():
    html = ("<html><body><article><p>" + "A paragraph of plain words about rivers. " * 12
            + "</p><iframe src='https://www.youtube.com/embed/x'></iframe></article></body></html>")
    assert _checked(html_path._parse(html)) is not None


def test_a_table_page_still_gets_readabilitys_text():
    # trafilatura's text has no paragraph, only a table: readability's text is preferred where it is long enough
    rows = "".join(f"<tr><td>Row {i} holds a sentence about the weather, the sea and the hills near town.</td>"
                   f"<td>{i}</td></tr>" for i in range(12))
    html = (f"<html><body><div class='post'><table>{rows}</table><table><tr><td>Source: the town council, 2024"
            " survey.</td></tr></table></div></body></html>")
    assert _checked(html_path._parse(html)) is not None
    assert _extract(html, gate=True) == _extract(html, gate=False)
