"""The article body a page declares in its JSON-LD, kept where the extracted view missed most of the article."""
from __future__ import annotations

import json
from pathlib import Path

import lxml.html
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.page_route import wcxb_pages
from pipelines.config.extract import HtmlSettings
from pipelines.extract import declared_body
from pipelines.extract import html as html_path
from pipelines.read.charsets import decode_html
from pipelines.text import word_prf

DECLARED = Path(__file__).parent / "data" / "wcxb-declared-body"  # a WCXB dev page whose JSON-LD holds its article


def test_a_declared_body_replaces_a_view_that_missed_the_article():
    (page,) = wcxb_pages(DECLARED)
    html, _ = decode_html(page["raw"])
    views = html_path.views(html, page["url"], HtmlSettings(), with_region=False)
    assert word_prf(views[1], page["gold"])[2] < 0.6  # trafilatura's text: the site's chrome and a third of it
    out = html_path.extract_html(html, page["url"], HtmlSettings())
    assert out["html_text"] == "declared"
    assert "&rsquo;" not in out["text"] and "you’re new to smartphones" in out["text"]  # references read
    assert word_prf(out["text"], page["gold"])[2] > 0.95
    off = html_path.extract_html(html, page["url"], HtmlSettings(route=False))
    assert off["text"] == views[1] and "html_text" not in off  # route: false is trafilatura's text alone


def _page(ld: object, paragraph: str) -> str:
    script = f'<script type="application/ld+json">{json.dumps(ld)}</script>' if ld is not None else ""
    return f"<html><head>{script}</head><body><article><p>{paragraph}</p></article></body></html>"


def test_only_an_article_kinds_body_is_read():
    body = "One paragraph of the article. " * 30
    tree = lxml.html.fromstring(_page({"@context": "https://schema.org", "@graph": [
        {"@type": "WebPage", "articleBody": "x" * 2000}, {"@type": ["NewsArticle"], "articleBody": body}]}, "p"))
    assert declared_body.declared_body(tree) == body.strip()
    product = lxml.html.fromstring(_page({"@type": "Product", "articleBody": body}, "p"))
    assert declared_body.declared_body(product) == ""
    assert declared_body.declared_body(lxml.html.fromstring(_page(None, "p"))) == ""
    broken = lxml.html.fromstring('<html><head><script type="application/ld+json">{"articleBody": </script></head>'
                                  "<body><p>text</p></body></html>")
    assert declared_body.declared_body(broken) == ""  # malformed JSON-LD declares nothing


def test_markup_inside_a_body_is_read_as_text():
    body = "<p>First &amp; second.</p><p>Third<br>fourth</p>"
    tree = lxml.html.fromstring(_page({"@type": "BlogPosting", "articleBody": body}, "p"))
    assert declared_body.declared_body(tree) == "First & second.\nThird\nfourth"


WORDS = st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=8), min_size=1, max_size=400).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(WORDS, WORDS)
def test_a_body_replaces_only_a_much_shorter_text(body, text):
    chosen = declared_body.prefer(body, text)
    words, kept = len(body.split()), len(text.split())
    assert chosen == (len(body) >= declared_body.MIN_CHARS and words > declared_body.RATIO * kept)
    if chosen:
        assert words > kept  # never a summary over the fuller text


def test_a_short_body_never_replaces_the_view():
    summary = "A short summary of the story. " * 10  # 300 characters
    html = _page({"@type": "NewsArticle", "articleBody": summary}, "The story in full, a paragraph long. " * 3)
    out = html_path.extract_html(html, None, HtmlSettings())
    assert out["html_text"] != "declared"
