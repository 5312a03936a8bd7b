"""Page metadata from the markup (page_meta.py): the declared fields, and trafilatura's full search on request."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from trafilatura import metadata as trafilatura_metadata
from trafilatura.utils import load_html

from pipelines.config.extract import HtmlSettings
from pipelines.extract.html import extract_html
from pipelines.extract.page_meta import KEYS, declared_date, page_metadata
from pipelines.read.charsets import decode_html

WEB = Path(__file__).parent.parent / "examples" / "data" / "web"

PAGE = """<html lang="en"><head><title>Ignored title | Site</title>
<meta property="og:title" content="Tidal power in the Bay of Fundy">
<meta property="og:site_name" content="Coastal Review">
<meta name="description" content="How the tides of the Bay of Fundy turn turbines.">
<meta name="author" content="Ada Moreno">
<meta property="article:published_time" content="2024-05-17T08:30:00Z">
</head><body><article><h1>Tidal power</h1><p>The bay's tides are the highest in the world, and engineers
have tried for a century to turn them into electricity without harming the fish that pass through.</p>
</article></body></html>"""


def test_declared_fields_are_read_from_the_markup() -> None:
    meta = page_metadata(load_html(PAGE), "https://www.coastal.example/2024/05/tides")
    assert meta == {"title": "Tidal power in the Bay of Fundy", "author": "Ada Moreno", "date": "2024-05-17",
                    "sitename": "Coastal Review", "hostname": "coastal.example",
                    "description": "How the tides of the Bay of Fundy turn turbines."}


def test_a_page_without_declarations_has_only_what_it_shows() -> None:
    meta = page_metadata(load_html("<html><head><title>Notes</title></head><body><p>plain text here</p></body>"
                                   "</html>"), None)
    assert meta == {"title": "Notes"}


@pytest.fixture(scope="module")
def news_trees() -> list[tuple[object, str]]:
    pages = []
    for path in sorted(WEB.glob("*.html.gz"))[:16]:
        pages.append((load_html(decode_html(gzip.open(path).read())[0]), f"https://news.example/{path.stem}"))
    return pages


def test_declared_fields_agree_with_trafilatura_full_search(news_trees: list) -> None:
    """Title, site name, host name and description come from the same readers as trafilatura's own step; the
    default leaves out only its byline and text date searches, so a date or author it gives is one the full
    search gives too, where the page declares one."""
    dates, same = 0, 0
    for tree, url in news_trees:
        ours, full = page_metadata(tree, url), page_metadata(tree, url, search=True)
        assert full == {k: str(v) for k in KEYS if (v := getattr(trafilatura_metadata.extract_metadata(tree, url), k))}
        for key in ("title", "sitename", "hostname", "description"):
            assert ours.get(key) == full.get(key), (url, key)
        if "date" in ours:
            dates += 1
            same += ours["date"] == full.get("date")
    assert dates >= 12  # news pages declare their dates...
    assert same >= 0.9 * dates  # ...and htmldate's search of the whole page mostly finds the same one


def test_declared_date_sources() -> None:
    def tree(head: str, body: str = "") -> object:
        return load_html(f"<html><head>{head}</head><body>{body}<p>text</p></body></html>")

    assert declared_date(tree('<meta name="pubdate" content="2019-03-04T10:00">'), None) == "2019-03-04"
    assert declared_date(tree('<script type="application/ld+json">{"@type": "NewsArticle", '
                              '"datePublished": "2021-11-30T08:00:00Z"}</script>'), None) == "2021-11-30"
    assert declared_date(tree(""), "https://x.example/2020/7/9/story") == "2020-07-09"
    assert declared_date(tree("", '<time datetime="2018-02-01">Feb 1</time>'), None) == "2018-02-01"
    # the publication date before the modification date, whatever their order in the page
    assert declared_date(tree('<meta property="article:modified_time" content="2024-01-02">'
                              '<meta property="article:published_time" content="2023-12-31">'), None) == "2023-12-31"
    # not a real day, or in the future, or before the web: no date
    assert declared_date(tree('<meta name="date" content="2019-02-30">'), None) is None
    assert declared_date(tree('<meta name="date" content="2999-01-01">'), None) is None
    assert declared_date(tree('<meta name="date" content="1990-01-01">'), None) is None


def test_metadata_off_and_search_on_in_extraction() -> None:
    html = decode_html(gzip.open(sorted(WEB.glob("*.html.gz"))[0]).read())[0]
    plain = extract_html(html, "https://news.example/a", HtmlSettings(metadata=False))
    assert not set(plain) & set(KEYS)
    searched = extract_html(html, "https://news.example/a", HtmlSettings(metadata_search=True))
    default = extract_html(html, "https://news.example/a", HtmlSettings())
    assert searched["text"] == default["text"] == plain["text"]
    assert searched["title"] == default["title"]
