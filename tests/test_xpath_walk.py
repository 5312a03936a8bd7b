"""trafilatura's `re:test` expressions as tree walks (pipelines/extract/xpath_walk.py): the same elements in the
same order as lxml's XPath, on real pages, at trafilatura's own call sites and on generated trees."""
from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest
import trafilatura
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from pipelines.config.extract import HtmlSettings
from pipelines.extract import html as html_path
from pipelines.extract import xpath_walk
from pipelines.read.charsets import decode_html

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent


def _pages() -> list[str]:
    files = sorted((DATA / "wcxb").rglob("*.html.gz")) + sorted((DATA / "modern" / "html").glob("*.html.gz"))
    files += sorted((ROOT / "examples" / "data" / "web").glob("*.html.gz"))
    return [html_path.unwrap_lines(decode_html(gzip.open(f).read())[0]) for f in files]


PAGES = _pages()


def test_the_costly_expressions_are_all_compiled():
    """A trafilatura release that changed these expressions beyond the subset read would silently lose the
    speed: every `re:test` expression the extraction itself runs must be compiled."""
    import trafilatura.xpaths as xpaths

    compiled = {id(s.original) for s in xpath_walk.swaps()}
    for name in ("OVERALL_DISCARD_XPATH", "BODY_XPATH", "COMMENTS_XPATH", "REMOVE_COMMENTS_XPATH",
                 "REMOVE_COMMENTS_AND_LISTS_XPATH", "RAW_TREE_PRUNE_XPATH", "PRECISION_DISCARD_XPATH",
                 "COMMENTS_DISCARD_XPATH"):
        with_regex = [e for e in getattr(xpaths, name) if "re:test" in e.path]
        assert with_regex and all(id(e) in compiled for e in with_regex), name
    assert any(s.key == "BASIC_CLEAN_XPATH" for s in xpath_walk.swaps())


def test_walks_select_what_lxml_selects_on_real_pages():
    assert len(PAGES) >= 130
    swaps = xpath_walk.swaps()
    for html in PAGES:
        tree = html_path._parse(html)
        if tree is None:
            continue
        for swap in swaps:
            assert swap.walk(tree) == swap.original(tree), swap.walk.path[:80]


@pytest.mark.parametrize("options", [{}, {"favor_precision": True}, {"favor_recall": True, "include_comments": True},
                                     {"fast": True}])
def test_trafilaturas_text_is_the_same_with_the_walks(options, monkeypatch):
    """At trafilatura's own call sites (the tree pruned and renamed as it goes), every walk is checked against
    lxml, and the text is the one trafilatura gives as shipped."""
    checked = []

    def checking(swap):
        walk = swap.walk

        def run(context):
            got = walk(context)
            assert got == swap.original(context), swap.walk.path[:80]
            checked.append(swap.key)
            return got
        return run

    settings_ = SimpleNamespace(**{**HtmlSettings(metadata=False).model_dump(), **options})
    for html in PAGES[::3]:
        tree = html_path._parse(html)
        walked = html_path._trafilatura(html if tree is None else tree, None, settings_, settings_.fast)
        stock = trafilatura.bare_extraction(
            html_path._parse(html) if tree is not None else html, with_metadata=False, deduplicate=False,
            include_comments=settings_.include_comments, include_tables=settings_.include_tables,
            favor_precision=settings_.favor_precision, favor_recall=settings_.favor_recall, fast=settings_.fast)
        assert walked == ((stock.text if stock is not None else "") or "")
    for swap in xpath_walk.swaps():
        monkeypatch.setattr(swap, "walk", checking(swap))
    for html in PAGES[1::3]:
        tree = html_path._parse(html)
        html_path._trafilatura(html if tree is None else tree, None, settings_, settings_.fast)
    assert len(set(checked)) >= 5


def test_the_walks_are_in_place_only_inside_the_block():
    import trafilatura.xpaths as xpaths

    first = xpaths.OVERALL_DISCARD_XPATH[0]
    assert isinstance(first, etree.XPath)
    with xpath_walk.installed():
        assert isinstance(xpaths.OVERALL_DISCARD_XPATH[0], xpath_walk.Walk)
        with xpath_walk.installed():
            pass
        assert isinstance(xpaths.OVERALL_DISCARD_XPATH[0], xpath_walk.Walk)
    assert xpaths.OVERALL_DISCARD_XPATH[0] is first


@pytest.mark.parametrize("expression", [
    "//div[@id]",  # absolute
    ".//div[position()=2]",
    ".//div[@id!='x']",
    ".//div[re:test(@id, 'x', 'g')]",
    ".//div[text()]",
    ".//div/p",
    "(.//div)[2]",
])
def test_an_expression_outside_the_subset_keeps_lxml(expression):
    assert xpath_walk.compile_walk(expression) is None


def test_positions_unions_and_attribute_order():
    tree = etree.fromstring(
        "<r><s><div class='x a'/><div class='x b'/></s><s><p id='y' class='z'/><p class='z' id='y'/>"
        "<div class='x c'><div class='x d'/></div></s><main/></r>")
    for text in (".//div[contains(@class, 'x')][1]",
                 "(.//div[contains(@class, 'x')])[1]",
                 "(.//div[contains(@class, 'c')])[1]|(.//main)[1]",
                 ".//*[starts-with(@id|@class, 'z')]",
                 ".//*[starts-with(@class|@id, 'y')]",
                 ".//p|.//main|.//div[not(.//div) and re:test(@class, 'X', 'i')]",
                 ".//*[self::p or self::main][@id='y' or not(@class)]"):
        walk = xpath_walk.compile_walk(text)
        assert walk is not None, text
        assert walk(tree) == etree.XPath(text, namespaces={"re": "http://exslt.org/regular-expressions"})(tree), text


# Words from the expressions' own patterns, so generated names hit and miss them.
_WORDS = ["comment", "Comment", "comments-title", "reply-", "hidden", "display:none", "display: none", "nav",
          "Nav", "menu", "footer", "share", "social", "sidebar", "cookie", "cookie-banner", "post", "entry",
          "article-body", "articleBody", "content", "main", "main-content", "page-content", "story", "teaser",
          "caption", "ad-", " ad ", "author", "byline", "widget", "true", "x", "", "-", " ", "_", "N", "T"]
_TAGS = ["div", "section", "span", "p", "article", "main", "list", "item", "aside", "ol", "ul", "details", "h1",
         "footer", "script", "svg", "a"]
_ATTRS = ["id", "class", "style", "role", "aria-hidden", "itemprop", "data-component"]

_value = st.lists(st.sampled_from(_WORDS), max_size=3).map("".join)
_element = st.tuples(st.sampled_from(_TAGS),
                     st.lists(st.tuples(st.sampled_from(_ATTRS), _value), max_size=4, unique_by=lambda a: a[0]))


@st.composite
def _trees(draw):
    root = etree.Element("body")
    nodes = [root]
    for tag, attrs in draw(st.lists(_element, min_size=1, max_size=25)):
        parent = nodes[draw(st.integers(0, len(nodes) - 1))]
        element = etree.SubElement(parent, tag)
        for name, value in attrs:  # in the drawn order: `@a|@b` reads the first present
            element.set(name, value)
        nodes.append(element)
    return root


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_walks_select_what_lxml_selects_on_generated_trees(tree):
    for swap in xpath_walk.swaps():
        assert swap.walk(tree) == swap.original(tree), swap.walk.path[:80]


def test_trafilaturas_metadata_step_is_the_same_with_the_walks():
    """`extract.html.metadata_search` runs trafilatura's metadata step with the walks in place (its byline
    search prunes with them): the fields are the ones it finds as shipped."""
    from trafilatura import metadata as meta

    from pipelines.extract.page_meta import KEYS, page_metadata

    for html in PAGES[::6]:
        tree = html_path._parse(html)
        if tree is None:
            continue
        stock = meta.extract_metadata(html_path._parse(html), None)
        assert page_metadata(tree, None, search=True) == {
            k: str(v) for k in KEYS if (v := getattr(stock, k, None))}
