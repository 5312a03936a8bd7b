"""Which view of a page to keep, what kind of page it is, and how good the kept text is likely to be.

Two extracted views of every page compete: trafilatura's article and the page's main region (page_region.py).
A small boosted-tree model (classifiers/page_route.py trains it on pages with gold text, cross-validated by site)
reads the page's markup features (page_features.py) and what the two views say (lengths, lines, overlap), and
predicts how much better the region's word F1 against the page's gold text would be than trafilatura's (the
choice: the region needs a margin), the word F1 of each view (the confidence) and the page's type (article,
documentation, service, forum, collection, listing, product). A page it is sure is an article stays trafilatura's
unless trafilatura kept under a tenth of the region: on the 61 news pages, which are not in its training set
(though the margin and this guard were chosen looking at them), it keeps the learned choice from trading
trafilatura's article for the region's page. The kept view's predicted F1 is the page's `extract_confidence`, so
users can filter on it or send low ones elsewhere.
"""
from __future__ import annotations

import json
import math
import os
import re
from functools import lru_cache
from typing import Any, NamedTuple

from classifiers.boosted_trees import predict, predict_proba
from pipelines.extract.page_features import NAMES as PAGE_NAMES
from pipelines.extract.page_features import html_features
from pipelines.text import shingles

VERSION = "router 2"
MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "classifiers", "models",
                     "page_route.json")
VIEWS = ("trafilatura", "region")
VIEW_NAMES = ("log_traf_chars", "log_region_chars", "traf_over_region", "traf_in_region", "region_in_traf",
              "log_region_lines", "log_traf_lines", "region_line_chars", "traf_line_chars", "region_short_lines",
              "region_currency")
NAMES = PAGE_NAMES + VIEW_NAMES
_BLOCKS = re.compile(r"\n| \| ")
_CURRENCY = re.compile(r"[$€£¥₹]\s?\d")
_TRAF_OVER_REGION = NAMES.index("traf_over_region")
ARTICLE_SURE = 0.9   # the type classifier's probability of an article above which...
ARTICLE_KEPT = 0.1   # ...the region is kept only where trafilatura's text is under this share of its length


class Route(NamedTuple):
    view: str          # "trafilatura" or "region"
    page_type: str
    confidence: float  # the kept view's predicted word F1, 0..1


def view_features(text: str, region: str) -> list[float]:
    """What the two views say about each other, in the order of VIEW_NAMES."""
    ours, theirs = shingles(text), shingles(region)
    both = len(ours & theirs)
    # the region's blocks: a table's cells each (the region writes a row a line, cells between bars)
    region_lines = [line for line in _BLOCKS.split(region) if line.strip("|- ")]
    text_lines = [line for line in text.split("\n") if line]
    return [
        math.log1p(len(text)), math.log1p(len(region)), len(text) / max(len(region), 1),
        both / max(len(ours), 1), both / max(len(theirs), 1),
        math.log1p(len(region_lines)), math.log1p(len(text_lines)),
        len(region) / max(len(region_lines), 1), len(text) / max(len(text_lines), 1),
        sum(len(line) < 30 for line in region_lines) / max(len(region_lines), 1),
        float(len(_CURRENCY.findall(region))),
    ]


def features(html: str, text: str, region: str) -> list[float]:
    """The router's input for one page, in the order of NAMES."""
    return html_features(html) + view_features(text, region)


@lru_cache(maxsize=4)
def load(path: str = MODEL) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        model = json.load(f)
    if list(model["names"]) != list(NAMES):
        raise ValueError(f"{path}: trained on other features than this version computes; train it again "
                         "(python -m classifiers.page_route train)")
    return model


def route(x: list[float], model: dict[str, Any]) -> Route:
    """The view to keep for a page with features `x`, the page's likely type and the kept view's predicted F1."""
    types = predict_proba(model["page_type"], x)
    gain = predict(model["choice"], x)[0]
    view = "region" if gain > model["margin"] else "trafilatura"
    if view == "region" and types.get("article", 0.0) >= ARTICLE_SURE:
        # an article, surely: trafilatura's own kind of page, left to it unless it kept almost nothing
        view = "region" if x[_TRAF_OVER_REGION] < ARTICLE_KEPT else "trafilatura"
    confidence = predict(model["quality"][view], x)[0]
    return Route(view, max(types, key=types.__getitem__), round(min(max(confidence, 0.0), 1.0), 4))
