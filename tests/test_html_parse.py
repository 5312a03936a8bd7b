"""The page as a browser reads it: markup after `</html>` belongs to the body, not to a second root no view reads."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.page_route import wcxb_pages
from pipelines.config.curate import HtmlSettings
from pipelines.extract import html as html_path
from pipelines.read.charsets import decode_html
from pipelines.text import word_prf

AFTER_END = Path(__file__).parent / "data" / "wcxb-after-end"  # a WCXB dev page whose article follows </html>


def test_an_article_after_the_documents_end_is_extracted():
    (page,) = wcxb_pages(AFTER_END)
    html, _ = decode_html(page["raw"])
    assert html.lower().count("</html>") == 2
    tree = html_path._parse(html_path.unwrap_lines(html))
    assert not _left_after(tree)
    assert "The Human Resources department of any company" in tree.find("body").text_content()
    extracted = html_path.extract_html(html, page["url"], HtmlSettings())["text"]
    assert word_prf(extracted, page["gold"])[2] > 0.9  # 0.04 when the second root was left out


def _left_after(tree) -> list:
    """The roots after the page's own that still hold something: lxml cannot drop a root, so they stay, emptied."""
    return [el for el in tree.itersiblings() if isinstance(el.tag, str) and (len(el) or (el.text or "").strip())]


WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
PARAGRAPH = st.lists(WORD, min_size=1, max_size=6).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(PARAGRAPH, PARAGRAPH, PARAGRAPH, st.sampled_from(["{}", "<div><p>{}</p></div>", "<html><body><p>{}</p></body>",
                                                          "<html><head><title>t</title></head><body>{}</body></html>"]))
def test_text_after_the_end_joins_the_body_in_order(first, second, after, wrap):
    page = (f"<html><head><title>page</title></head><body><p>{first}</p><p>{second}</p></body></html>"
            + wrap.format(after))
    tree = html_path._parse(page)
    assert not _left_after(tree)
    assert "".join(tree.find("body").itertext()) == first + second + after


def test_a_page_that_ends_once_is_left_as_parsed():
    page = "<html><body><p>one two</p></body></html>"
    tree = html_path._parse(page)
    assert tree.find("body").text_content() == "one two" and len(tree) == 1
