"""A page's metadata (title, author, date, site name, host name, description) from its parsed tree.

By default from what the markup declares: meta tags, Open Graph, JSON-LD and the <title> element (trafilatura's
readers of them), and a publication date from the date meta tags, JSON-LD, the URL or the first <time> element
(declared_date), about 4 ms a page on WCXB's pages. `search=True` runs trafilatura's own metadata step instead:
it also looks for a byline among the page's elements and for a date in its text (htmldate), about 70 ms a page,
more than trafilatura's text extraction without its fallback.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

KEYS = ("title", "author", "date", "sitename", "hostname", "description")
# meta tags that name a page's publication date (property or name, lower-cased), most trusted first
_DATE_META = ("article:published_time", "og:published_time", "og:article:published_time", "datepublished",
              "date", "pubdate", "publishdate", "publish-date", "publish_date", "dc.date.issued", "dc.date",
              "dcterms.issued", "dcterms.created", "dcterms.date", "citation_publication_date", "citation_date",
              "sailthru.date", "parsely-pub-date", "article.published", "published_time", "published-date",
              "release_date", "created", "article:modified_time", "og:updated_time", "datemodified",
              "last-modified")
_META_DATES = "//meta[@content][@property or @name or @itemprop]"
_ISO_DAY = re.compile(r"((?:19|20)\d\d)-(\d\d)-(\d\d)")
_LD_DATE = re.compile(r'"date(?:Published|Created)"\s*:\s*"((?:19|20)\d\d-\d\d-\d\d)')
_URL_DATE = re.compile(r"/((?:19|20)\d\d)[/_-](\d{1,2})[/_-](\d{1,2})(?:/|[_-]|$)")


def page_metadata(tree: Any, url: str | None, search: bool = False) -> dict[str, str]:
    """The page's metadata fields that it has, as strings (`date` as YYYY-MM-DD)."""
    from trafilatura import metadata as meta

    if search:
        from pipelines.extract import xpath_walk

        with xpath_walk.installed():  # the same fields; its byline search's class tests run faster
            found = meta.extract_metadata(tree, url)
    else:
        found = _declared(tree, url)
    return {key: str(value) for key in KEYS if (value := getattr(found, key, None))}


def _declared(tree: Any, url: str | None) -> Any:
    """trafilatura's metadata steps that read declared markup, in its order; no byline or text date search."""
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
    found.date = declared_date(tree, found.url)
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


def declared_date(tree: Any, url: str | None) -> str | None:
    """The publication date the page declares (meta tags, JSON-LD, a date in the URL, the first <time>), as
    YYYY-MM-DD; None where it declares none that is a real date between 1995 and today."""
    named = {}
    for tag in tree.xpath(_META_DATES):
        key = (tag.get("property") or tag.get("name") or tag.get("itemprop") or "").strip().lower()
        named.setdefault(key, tag.get("content"))
    candidates = [named[key] for key in _DATE_META if key in named]
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        candidates += _LD_DATE.findall(script)
    if url and (m := _URL_DATE.search(url)):
        candidates.append(f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}")
    candidates += tree.xpath("//time/@datetime")[:1]
    for value in candidates:
        if m := _ISO_DAY.search(value or ""):
            try:
                day = date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                continue
            if date(1995, 1, 1) <= day <= date.today():
                return day.isoformat()
    return None
