"""A page's metadata (title, author, date, site name, host name, description) from its parsed tree.

By default from what the markup declares: meta tags, Open Graph, JSON-LD, the <title> element, and htmldate's
quick date search of the same markup (trafilatura's readers for each, about 14 ms a page on WCXB's pages).
`search=True` adds what trafilatura's own metadata step does besides: it looks for a byline in the page's
elements and for a date in its text (htmldate's extensive search), about 70 ms a page in all, more than
trafilatura's text extraction costs without its fallback.
"""
from __future__ import annotations

from typing import Any

KEYS = ("title", "author", "date", "sitename", "hostname", "description")


def page_metadata(tree: Any, url: str | None, search: bool = False) -> dict[str, str]:
    """The page's metadata fields that it has, as strings (`date` as YYYY-MM-DD)."""
    from trafilatura import metadata as meta

    if search:
        found = meta.extract_metadata(tree, url)
    else:
        found = _declared(tree, url)
    return {key: str(value) for key in KEYS if (value := getattr(found, key, None))}


def _declared(tree: Any, url: str | None) -> Any:
    """trafilatura's metadata steps that read declared markup, in its order; no byline or text date search."""
    from htmldate import find_date
    from trafilatura import metadata as meta

    found = meta.examine_meta(tree)
    if found.author and " " not in found.author:  # a handle, not a name (as trafilatura judges it)
        found.author = None
    try:
        found = meta.extract_meta_json(tree, found)
    except Exception:  # noqa: BLE001 - malformed JSON-LD: the meta tags stand
        pass
    if not found.title:
        found.title = meta.extract_title(tree)
    if not found.url:
        found.url = meta.extract_url(tree, url)
    if found.url:
        found.hostname = meta.extract_domain(found.url, fast=True)
    found.date = find_date(tree, **{**meta.set_date_params(extensive=False), "url": found.url})
    if not found.sitename:
        found.sitename = meta.extract_sitename(tree)
    if found.sitename:
        found.sitename = found.sitename.lstrip("@")
        if found.sitename and "." not in found.sitename and not found.sitename[0].isupper():
            found.sitename = found.sitename.title()
    elif found.url and (host := meta.META_URL.match(found.url)):
        found.sitename = host[1]
    found.clean_and_trim()
    return found
