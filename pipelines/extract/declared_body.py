"""The article text a page declares in its structured data (JSON-LD `articleBody`), kept where the extracted view
missed most of it.

Some pages load or hide their article's body (paywalls, "read more" folds, text drawn by scripts) but declare
it whole in a JSON-LD `Article`, `NewsArticle` or `BlogPosting`. Where that declared body is long
(MIN_CHARS) and holds over RATIO times the words of the view the router kept, the view missed the article and
the declared body is kept instead. Measured on every page with an `articleBody` (35 WCXB dev pages, 17 modern,
7 news), word F1: at 1.5 it replaced two WCXB pages' text (0.39 -> 0.99, 0.50 -> 1.00), one modern page's and
no news page's; at 1.2 it also replaced a news page's text with a longer body than its gold (0.985 -> 0.833).
A body shorter than the view is often a summary or the first paragraphs (an article page on WCXB declares 435 of
its 1,909 words), so it never replaces the view.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

from pipelines.extract.page_features import LD_ARTICLE
from pipelines.text import collapse_runs

MIN_CHARS = 500
RATIO = 1.5
# the kinds of schema.org object whose articleBody is the page's text: the router's article kinds and these
_ARTICLE_TYPES = frozenset(LD_ARTICLE | {"TechArticle", "DiscussionForumPosting", "BackgroundNewsArticle",
                                         "ReviewNewsArticle", "SatiricalArticle", "SocialMediaPosting"})
_TAG = re.compile(r"<[^>]{0,500}>")
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|blockquote|tr)\s*>|<br\s*/?>", re.I)
_WORD = re.compile(r"\w+")


def declared_body(tree: Any) -> str:
    """The longest `articleBody` of an article kind in the page's JSON-LD, as plain text (markup inside it removed,
    character references read, a paragraph a line); "" where there is none."""
    found: list[str] = []
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        if "articleBody" not in script:
            continue
        try:
            _bodies(json.loads(script), found)
        except (ValueError, RecursionError):  # malformed JSON-LD declares nothing
            continue
    return _plain(max(found, key=len)) if found else ""


def _bodies(value: Any, found: list[str]) -> None:
    """The articleBody strings of article-kind objects anywhere in a JSON-LD value (@graph and nesting too)."""
    if isinstance(value, list):
        for item in value:
            _bodies(item, found)
    elif isinstance(value, dict):
        body, kind = value.get("articleBody"), value.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if isinstance(body, str) and any(isinstance(k, str) and k in _ARTICLE_TYPES for k in kinds):
            found.append(body)
        for item in value.values():
            if isinstance(item, (dict, list)):
                _bodies(item, found)


def _plain(body: str) -> str:
    text = _TAG.sub(" ", _BLOCK_END.sub("\n", body)) if "<" in body else body
    text = html.unescape(text)
    lines = (collapse_runs(line, " \t\r\f\v\u00a0", " ").strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def prefer(body: str, text: str) -> bool:
    """Whether the declared body should replace the extracted text: long, and over RATIO times its words."""
    return len(body) >= MIN_CHARS and len(_WORD.findall(body)) > RATIO * len(_WORD.findall(text))
