"""Which view of a page to keep, what kind of page it is, and how good the kept text is likely to be.

Three extracted views of every page compete: trafilatura's article, the page's main region (page_region.py) and
the region's lines that the line model scores as content (`filtered`, page_lines.py). Small boosted-tree models
(classifiers/page_route.py trains them on pages with gold text, cross-validated by site) read the page's markup
features (page_features.py) and what the views say (lengths, lines, overlap), and predict the page's type
(article, documentation, service, forum, collection, listing, product), how much better each of the other views'
word F1 against the page's gold text would be than trafilatura's (the choice) and the word F1 of each view (the
confidence). A page whose lines are scored keeps the filtered view, or the region where its predicted gain is
clearly larger (REGION_OVER_FILTERED). A page the type classifier is sure is an article (0.9)
stays trafilatura's unless trafilatura kept under a tenth of the region, and its lines are not scored: on the 61
news pages, which are not in its training set (though this guard was chosen looking at them), the filtered
view would trade a point of trafilatura's F1 for its own, and most pages of a crawl are articles. The kept
view's predicted F1 is the page's `extract_confidence`, so users can filter on it or send low ones elsewhere.

Before any of that, a gate (gate()) reads only what is known before the region is made (the markup's features
and trafilatura's text's length and lines) and keeps trafilatura's text where its own type classifier is surer
still that the page is an article (ARTICLE_GATE) and the text is not short (GATE_MIN_CHARS). Such a page costs
no region, no view features and no line scores.

And before trafilatura runs, a type classifier that reads the markup's features alone (fallbacks()) picks out the
pages that are surely a shop's or a service's (FAST_TYPES at FAST_AT or more): trafilatura runs on them without its
fallbacks (readability, jusText, its recall retry's comparison), which are for articles whose own extraction fell
short. Such pages mostly keep the region or its filtered view, and trafilatura costs about a third less on them.
"""
from __future__ import annotations

import json
import math
import os
import re
from functools import lru_cache
from typing import Any, NamedTuple

from classifiers.boosted_trees import predict, predict_proba
from pipelines.extract import page_lines, page_region
from pipelines.extract.page_features import NAMES as PAGE_NAMES
from pipelines.extract.page_features import html_features
from pipelines.text import shingles

VERSION = "router 12"
MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "classifiers", "models",
                     "page_route.json")
VIEWS = ("trafilatura", "region", "filtered")
VIEW_NAMES = ("log_traf_chars", "log_region_chars", "traf_over_region", "traf_in_region", "region_in_traf",
              "log_region_lines", "log_traf_lines", "region_line_chars", "traf_line_chars", "region_short_lines",
              "region_currency")
FILTERED_NAMES = ("log_filtered_chars", "filtered_over_region", "filtered_lines_share", "mean_line_score",
                  "traf_in_filtered", "filtered_in_traf")
NAMES = PAGE_NAMES + VIEW_NAMES + FILTERED_NAMES
PAGE = len(NAMES) - len(FILTERED_NAMES)  # the features read before the lines are scored (the line model's too)
TEXT_NAMES = ("log_traf_chars", "log_traf_lines", "traf_line_chars")  # trafilatura's text alone (text_features)
GATE_NAMES = PAGE_NAMES + TEXT_NAMES  # what the gate reads: known before the region is made
GATE = [NAMES.index(name) for name in GATE_NAMES]
_GATE_TRAF_CHARS = GATE_NAMES.index("log_traf_chars")
_BLOCKS = re.compile(r"\n| \| ")
_CURRENCY = re.compile(r"[$€£¥₹]\s?\d")
_TRAF_OVER_REGION = NAMES.index("traf_over_region")
_FILTERED_CHARS = NAMES.index("log_filtered_chars")
ARTICLE_SURE = 0.9   # the type classifier's probability of an article above which...
ARTICLE_KEPT = 0.1   # ...the region is kept only where trafilatura's text is under this share of its length
# The gate keeps trafilatura's text where its type classifier gives an article at least this probability and the
# text has more than GATE_MIN_CHARS characters. Simulated out of fold by site (LightGBM standing in for refinery's
# trees, router 5's rule after it), WCXB dev: 0.855 at 0.95 against 0.855 without the gate; 0.854 at 0.9.
ARTICLE_GATE = 0.95
GATE_MIN_CHARS = 500
_GATE_MIN_LOG = math.log1p(GATE_MIN_CHARS)
# A page whose lines are scored keeps the filtered view unless the region's predicted gain is this much larger:
# cross-validated by site (WCXB dev / modern pages), router 6 (repeats kept): 0, 0.02, 0.05 and 0.1 give
# 0.852/0.826, 0.854/0.827, 0.855/0.825 and 0.855/0.822; router 7 (each repeated line once): 0.05, 0.1 and 0.15
# give 0.8605/0.831, 0.8616/0.830 and 0.8622/0.829 (0.1 chosen after the 61 news pages, which are not trained
# on, showed a page sent to the region at 0.05: 0.950 there against 0.958)
REGION_OVER_FILTERED = 0.1
# trafilatura runs without its fallbacks where the markup's type classifier gives these types together at least
# FAST_AT. Out of fold by site (router 11's rows), WCXB dev: 159 pages at 0.9 (74 products, 55 collections, 23
# services, 7 listings, no article or forum), 3.8 s of the 68 s the extractor took over the 1,497 pages, word F1
# +0.18 summed; at 0.8, 214 pages (3 articles), 4.8 s, -0.05. Listings are not among them: with them (at 0.9,
# 237 pages, 6.0 s, -0.15), a listing whose text trafilatura's recall retry found with jusText lost it
FAST_TYPES = ("product", "collection", "service")
FAST_AT = 0.9


class Route(NamedTuple):
    view: str          # "trafilatura", "region" or "filtered"
    page_type: str
    confidence: float  # the kept view's predicted word F1, 0..1


@lru_cache(maxsize=2)
def _text_shingles(text: str) -> set[tuple[str, ...]]:
    """trafilatura's text's shingles, read by both view_features and filtered_view of a page: made once (the
    callers only read the set)."""
    return shingles(text)


def text_features(text: str) -> list[float]:
    """What trafilatura's text says alone, in the order of TEXT_NAMES: its length, lines and line length."""
    lines = sum(1 for line in text.split("\n") if line)
    return [math.log1p(len(text)), math.log1p(lines), len(text) / max(lines, 1)]


def view_features(text: str, region: str) -> list[float]:
    """What the two views say about each other, in the order of VIEW_NAMES."""
    ours, theirs = _text_shingles(text), shingles(region)
    both = len(ours & theirs)
    # the region's blocks: a table's cells each (the region writes a row a line, cells between bars)
    region_lines = [line for line in _BLOCKS.split(region) if line.strip("|- ")]
    text_chars, text_lines, text_line_chars = text_features(text)
    return [
        text_chars, math.log1p(len(region)), len(text) / max(len(region), 1),
        both / max(len(ours), 1), both / max(len(theirs), 1),
        math.log1p(len(region_lines)), text_lines,
        len(region) / max(len(region_lines), 1), text_line_chars,
        sum(len(line) < 30 for line in region_lines) / max(len(region_lines), 1),
        float(len(_CURRENCY.findall(region))),
    ]


def features(html: str, text: str, region: str, page: list[float] | None = None) -> list[float]:
    """The page's features and what trafilatura's text and the region say, in the order of NAMES' first two
    groups (the line model's page features); `page` is html_features(html) where the caller has it."""
    return (html_features(html) if page is None else page) + view_features(text, region)


def filtered_view(text: str, region: str, lines: list[str], line_scores: list[float],
                  relative: float) -> tuple[str, list[float]]:
    """The text of the region's lines scored above `relative` times the page's best line score (each repeat left
    out: page_region.text_of), and what the kept lines say (FILTERED_NAMES, repeats counted: the models read the
    page as it was). The cut follows the page's best line: where the model is unsure of every line, the lines it
    ranks first are kept all the same."""
    cut = relative * max(max(line_scores, default=0.0), 0.0)
    kept = [line for line, score in zip(lines, line_scores) if score > cut]
    every = "\n".join(kept)
    ours, theirs = _text_shingles(text), shingles(every)
    both = len(ours & theirs)
    said = [math.log1p(len(every)), len(every) / max(len(region), 1), len(kept) / max(len(line_scores), 1),
            sum(line_scores) / max(len(line_scores), 1), both / max(len(ours), 1), both / max(len(theirs), 1)]
    return page_region.text_of(kept), said


def views(html: str, text: str, lines: list[page_region.Line], model: dict[str, Any],
          page: list[float] | None = None) -> tuple[list[float], dict[str, str]]:
    """The router's input for one page (in the order of NAMES) and the text of each view; `page` is
    html_features(html) where the caller has it. A page the type classifier is sure is an article is left to
    trafilatura's text or the region (route()): its lines are not scored, and its input stops before the
    filtered view's features."""
    texts = [line.text for line in lines]
    region = "\n".join(texts)  # what the models read: the region with its repeats
    x = features(html, text, region, page)
    shown = {"trafilatura": text, "region": page_region.text_of(texts)}
    if sure_article(predict_proba(model["page_type"], x)):
        return x, shown  # an article, surely: its lines are not scored
    line_scores = page_lines.scores(lines, text, x, model["lines"])
    filtered, said = filtered_view(text, region, texts, line_scores, model["relative_threshold"])
    return x + said, shown | {"filtered": filtered}


@lru_cache(maxsize=4)
def load(path: str | None = None) -> dict[str, Any]:
    """The router's models: the file `python -m classifiers.page_route train` wrote at `path`, or (None) the one
    refinery ships."""
    path = path or MODEL
    with open(path, encoding="utf-8") as f:
        try:
            model = json.load(f)
        except ValueError:
            model = None
    if not isinstance(model, dict) or not {"names", "page_type", "choice", "quality", "lines"} <= model.keys():
        raise ValueError(f"{path}: not a page router model (python -m classifiers.page_route train writes one)")
    if (list(model["names"]) != list(NAMES) or list(model.get("line_names", ())) != list(page_lines.NAMES)
            or "gate" not in model or "pre" not in model or "relative_threshold" not in model):
        raise ValueError(f"{path}: trained on other features than this version computes; train it again "
                         "(python -m classifiers.page_route train)")
    return model


def fallbacks(page: list[float], model: dict[str, Any]) -> bool:
    """Whether trafilatura should run its fallbacks on a page with markup features `page` (html_features): not
    where the markup alone makes it a shop's or a service's page surely enough."""
    types = predict_proba(model["pre"]["page_type"], page)
    return sum(types.get(kind, 0.0) for kind in FAST_TYPES) < FAST_AT


def gate(x: list[float], model: dict[str, Any]) -> Route | None:
    """trafilatura's text, where the page's features and the text's (`x`, in the order of GATE_NAMES) make it an
    article surely enough that the other views need not be made; else None."""
    if x[_GATE_TRAF_CHARS] <= _GATE_MIN_LOG:
        return None
    if predict_proba(model["gate"]["page_type"], x).get("article", 0.0) < ARTICLE_GATE:
        return None
    return Route("trafilatura", "article", _confidence(predict(model["gate"]["quality"], x)[0]))


def route(x: list[float], model: dict[str, Any]) -> Route:
    """The view to keep for a page with features `x` (without the filtered view's where its lines were not
    scored), the page's likely type and the kept view's predicted F1. The gate's choice where it makes one."""
    gated = gate([x[i] for i in GATE], model)
    if gated is not None:
        return gated
    page = x[:PAGE]
    types = predict_proba(model["page_type"], page)
    region_gain = predict(model["choice"]["region"], page)[0]
    if sure_article(types) or len(x) == PAGE:
        # an article, surely: trafilatura's own kind of page, left to it unless it kept almost nothing
        view = "region" if region_gain > model["margin"] and x[_TRAF_OVER_REGION] < ARTICLE_KEPT else "trafilatura"
    elif x[_FILTERED_CHARS] == 0.0:  # no line scored as content: trafilatura, or the region where it gains
        view = "region" if region_gain > model["margin"] else "trafilatura"
    else:
        # a filtered region is the better default here: trafilatura's lines are among its features
        filtered_gain = predict(model["choice"]["filtered"], x)[0]
        view = "region" if region_gain > filtered_gain + REGION_OVER_FILTERED else "filtered"
    confidence = predict(model["quality"][view], x if view == "filtered" else page)[0]
    return Route(view, max(types, key=types.__getitem__), _confidence(confidence))


def _confidence(predicted: float) -> float:
    """A predicted word F1 as `extract_confidence`: within 0..1, to four places."""
    return round(min(max(predicted, 0.0), 1.0), 4)


def sure_article(types: dict[str, float]) -> bool:
    return types.get("article", 0.0) >= ARTICLE_SURE
