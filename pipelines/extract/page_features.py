"""What a page's markup and URL say about its kind, as numbers: the page router's features (route.py).

Counted with regular expressions over the raw markup, so they cost a few passes over the page's characters and
no tree: tags, class and id words (comments, prices, ratings, pagination...), schema.org and Open Graph types,
link text. Not the URL: a page reads the same from a WARC record as from a file with no URL. The router adds what the two extracted views say (their lengths, lines and overlap).
"""
from __future__ import annotations

import math
import re
from collections import Counter

_TAGS = ("a", "p", "li", "td", "table", "pre", "code", "form", "input", "button", "img", "h1", "h2", "h3",
         "article", "section", "main", "nav", "aside", "time", "blockquote", "dl", "select", "iframe", "span",
         "div", "ul", "ol", "header", "footer", "figure", "svg", "label", "textarea")
_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)[\s/>]")
# words of class and id attributes that mark a kind of block
_WORDS = ("comment", "reply", "post", "thread", "forum", "message", "answer", "question", "vote", "price",
          "cart", "basket", "buy", "rating", "review", "star", "product", "sku", "stock", "variant", "breadcrumb",
          "pagination", "pager", "sidebar", "author", "byline", "toc", "faq", "accordion", "card", "item",
          "listing", "result", "tile", "grid", "filter", "facet", "sort", "docs", "api", "highlight", "syntax",
          "menu", "related", "share", "social", "tag", "category", "entry", "content", "article", "blog", "news",
          "service", "contact", "hero", "cta", "feature", "testimonial", "pricing", "team", "user", "avatar",
          "signature", "quote", "permalink", "timestamp", "date")
_WORD_SET = frozenset(_WORDS)
# patterns start with a literal, which the regex engine scans for at C speed
_CLASS = re.compile(r"""class\s*=\s*["']([^"']{1,300})["']""")
_ID = re.compile(r"""id\s*=\s*["']([^"']{1,300})["']""")
_WORD = re.compile(r"[a-z]+")
_ITEMPROPS = ("price", "offers", "ratingvalue", "reviewcount", "author", "datepublished", "articlebody",
              "text", "upvotecount", "answercount", "itemlistelement", "name", "description", "headline")
_ITEMPROP = re.compile(r"""itemprop\s*=\s*["']([^"']+)["']""")
_LD_TYPE = re.compile(r'"@type"\s*:\s*(\[[^\]]{0,400}\]|"[^"]{0,100}")')
_QUOTED = re.compile(r'"([^"]+)"')
_LD_GROUPS = {
    "ld_article": {"Article", "NewsArticle", "BlogPosting", "ReportageNewsArticle", "ScholarlyArticle", "Report",
                   "OpinionNewsArticle", "AnalysisNewsArticle", "LiveBlogPosting"},
    "ld_tech": {"TechArticle", "APIReference", "SoftwareSourceCode", "SoftwareApplication", "HowTo"},
    "ld_product": {"Product", "ProductGroup", "Offer", "AggregateOffer", "IndividualProduct", "Vehicle", "Book"},
    "ld_forum": {"DiscussionForumPosting", "QAPage", "Question", "Answer", "Comment", "SocialMediaPosting"},
    "ld_list": {"ItemList", "CollectionPage", "SearchResultsPage", "OfferCatalog", "ListItem"},
    "ld_service": {"Service", "LocalBusiness", "Organization", "Corporation", "ProfessionalService",
                   "FinancialService", "Restaurant", "Store", "MedicalOrganization", "Hotel", "ContactPage",
                   "AboutPage", "FAQPage", "Event", "JobPosting", "Course", "Recipe"},
    "ld_webpage": {"WebPage", "WebSite", "BreadcrumbList", "SiteNavigationElement"},
    "ld_review": {"Review", "AggregateRating", "Rating"},
}
LD_ARTICLE = _LD_GROUPS["ld_article"]  # the article kinds (declared_body.py reads their articleBody)
_OG_TYPE = re.compile(r"""<meta\b[^>]*?\bproperty\s*=\s*["']og:type["'][^>]*>""", re.I)
_CONTENT = re.compile(r"""\bcontent\s*=\s*["']([^"']*)["']""", re.I)
_OG = ("article", "product", "website", "other")
_LINK_TEXT = re.compile(r"<a\b[^>]*>([^<]{0,300})</a>", re.I)
NAMES: tuple[str, ...] = (
    ("log_bytes", "log_link_text")
    + tuple(f"tag_{t}" for t in _TAGS) + tuple(f"w_{w}" for w in _WORDS)
    + tuple(f"prop_{p}" for p in _ITEMPROPS) + tuple(_LD_GROUPS) + tuple(f"og_{o}" for o in _OG + ("none",))
)


def html_features(html: str) -> list[float]:
    """The page's features, in the order of NAMES. Tag and word counts are per thousand tags, so that a long
    page and a short one of the same kind look alike."""
    tags: Counter[str] = Counter()
    for name, count in Counter(_TAG.findall(html)).items():  # counted as written, then folded to lower case
        tags[name.lower()] += count
    n_tags = max(sum(tags.values()), 1)
    words: Counter[str] = Counter()
    # a page repeats its class values: each distinct value is split once, its words counted once per use (only
    # the words a feature reads are counted)
    for value, count in Counter(_CLASS.findall(html) + _ID.findall(html)).items():
        for word in _WORD_SET.intersection(_WORD.findall(value.lower())):
            words[word] += count
    props: Counter[str] = Counter()
    for value, count in Counter(_ITEMPROP.findall(html)).items():
        for word in value.lower().split():
            props[word] += count
    types = {name.rsplit("/", 1)[-1] for m in _LD_TYPE.finditer(html) for name in _QUOTED.findall(m.group(1))}
    og = ""
    tag = _OG_TYPE.search(html)
    if tag:
        content = _CONTENT.search(tag.group(0))
        og = content.group(1).strip().lower().split(".")[0] if content else ""
    og = og if og in _OG[:3] else ("other" if og else "none")
    link_chars = sum(len(t) - t.count(" ") for t in _LINK_TEXT.findall(html))
    per = 1000.0 / n_tags
    return (
        [math.log1p(len(html)), math.log1p(link_chars)]
        + [tags.get(t, 0) * per for t in _TAGS]
        + [words.get(w, 0) * per for w in _WORDS]
        + [props.get(p, 0) * per for p in _ITEMPROPS]
        + [float(bool(types & group)) for group in _LD_GROUPS.values()]
        + [float(og == o) for o in _OG + ("none",)]
    )
