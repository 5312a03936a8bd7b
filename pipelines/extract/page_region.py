"""The visible text of a page's main region.

trafilatura looks for one article and keeps it. On a product page, a listing, a forum thread or a documentation
page that article is often a small part of the page's content: the specifications, the items, the other posts
are left out. `region_text` is the other view of the page: every visible text block of `<main>` (or of `<body>`
when a page has no single `<main>`), without scripts, navigation, site headers and footers, sidebars, form
fields, hidden blocks (the `hidden` attribute, hiding and screen-reader-only classes; a tab's or an accordion's
closed panel is read) or readers' comments under the page (not a thread's posts), starting at its first heading.
Elements side by side whose words meet (tags as links, a field's name and type) read as separate words. Code
keeps its lines and indentation as the page has them, and a data table reads one row a line, its cells between
bars (`| Power | 2200 W |`). A line the text already has (a quoted post, a block shown twice) is read once, where
it first shows (text_of). The page router (route.py) keeps it instead of trafilatura's text where it predicts the
region is closer to the page's content.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple

import lxml.html
from lxml import etree

from pipelines.text import collapse_runs


VERSION = "region 11"

# Elements whose text is never page content (a button's or a label's is: accordion questions, facet names).
_DROP_TAGS = frozenset({
    "script", "style", "template", "svg", "select", "option", "iframe", "object", "embed", "canvas", "head",
    "title", "meta", "link", "input", "textarea",
})
# Page chrome: navigation, the site's header and footer, sidebars, dialogs.
_CHROME_TAGS = frozenset({"nav", "aside", "header", "footer", "menu", "dialog"})
_CHROME_ROLES = frozenset({
    "navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alert", "menu", "menubar",
    "toolbar",
})
_HOLDS_PAGE = 0.5  # chrome holding this share of the page's text is malformed markup around the content: kept
# Elements that end a line of text.
_BLOCK = frozenset({
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt",
    "dd", "table", "tr", "blockquote", "pre", "br", "hr", "td", "th", "details", "summary", "figcaption",
    "address", "body", "form", "noscript",
})
# Private-use characters mark what the rendered text must remember; the page's own are removed first.
_HEADING_MARK = "\ue000"  # where the first <h1> starts
_VERBATIM_MARK = "\ue001"  # around the number of a block kept verbatim (code, table rows) until the text is rendered
_LINK_OPEN, _LINK_CLOSE = "\ue002", "\ue003"  # around a link's text
# the kind of block a line starts, as Line.tag numbers it
TAGS = ("heading", "item", "cell", "paragraph", "term", "other", "table", "code")
_TAG_MARKS = {"h1": "\ue010", "h2": "\ue010", "h3": "\ue010", "h4": "\ue010", "h5": "\ue010", "h6": "\ue010",
              "li": "\ue011", "td": "\ue012", "th": "\ue012", "p": "\ue013", "dt": "\ue014", "dd": "\ue014"}
_TAG_OF_MARK = {"\ue010": 0, "\ue011": 1, "\ue012": 2, "\ue013": 3, "\ue014": 4}
_OTHER, _TABLE, _CODE = 5, 6, 7
_MARKS = re.compile("[\ue000-\ue003\ue010-\ue014]")
_LINK_SPLIT = re.compile("([\ue002\ue003])")
_SHOWN_NOT = (_HEADING_MARK, *_TAG_OF_MARK)  # marks in a line's text: not counted in its link share
_LINE_MARKS = re.compile("[\ue000\ue002\ue003\ue010-\ue014]")  # all but the verbatim blocks' references
_NO_MARKS = {code: None for code in [*range(0xE000, 0xE004), *range(0xE010, 0xE015)]}
_MAX_CELL_CHARS = 400  # a table cell with more text holds paragraphs: a layout table, not data
_VERBATIM_REF = re.compile(_VERBATIM_MARK + r"(\d+)" + _VERBATIM_MARK)
_MIN_MAIN_CHARS = 200  # a <main> with less text than this is a shell filled by scripts: read the whole body
_MAX_BEFORE_HEADING = 0.3  # text before the first <h1> is dropped when it is at most this share of the region
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
# control characters XML does not allow: lxml parses past them but refuses them in text it is given back
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")  # lxml refuses a decoded string that names its encoding

def remove(el: etree._Element) -> None:
    """Remove an element but keep the text that follows it (its tail belongs to the parent)."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail and el.tail.strip():
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


_TEXT = etree.XPath("string()")  # an element's text, its descendants' included


def _chrome(el: etree._Element) -> bool:
    tag = el.tag
    if tag in ("header", "footer"):  # an article's own header is content
        return not any(a.tag in ("article", "main") for a in el.iterancestors())
    if tag in _CHROME_TAGS or (el.get("role") or "").lower() in _CHROME_ROLES:
        return True
    # `hidden` blocks are not shown, except the ones a streaming renderer fills in later (ids "S:...") and the
    # panels a reader opens with their tab or their accordion's button (named by it: aria-labelledby)
    return el.get("hidden") is not None and not ((el.get("id") or "").startswith("S:") or _panel(el))


def _panel(el: etree._Element) -> bool:
    """A tab's or an accordion's panel: hidden until its control opens it, and content all the same (WCXB dev's
    gold texts hold the other tabs' code samples and the closed answers)."""
    return (el.get("role") or "").lower() in ("tabpanel", "region") or el.get("aria-labelledby") is not None


# Class names that hide a block (CSS frameworks' and screen-reader-only utilities, as they are written: in lower
# case), and the ones that show it again from some screen width on (a desktop reader sees it)
_HIDING = re.compile(r"(?:^|\s)(?:sr-only|visually-?hidden|screen-reader-text|a11y-hidden|offscreen|d-none|hidden|"
                     r"is-hidden|u-hidden|hide)(?=\s|$)")
_SHOWING = re.compile(r"(?:^|\s)(?:d-(?:sm|md|lg|xl|xxl)-|(?:sm|md|lg|xl|2xl):)(?:block|flex|grid|inline|inline-block|"
                      r"inline-flex|table|contents|flow-root)(?=\s|$)")


# Screen-reader-only utilities as sites name their own (`u-text-sr-only`, `u-srOnly`, `visually-hidden--inline`,
# `a-offscreen`, `element-invisible`, `slds-assistive-text`): a class word that holds one of these stems, read in
# lower case without its dashes and underscores. Not Tailwind's `not-sr-only` (shown again), and not a word about
# a label (`field--label-visually_hidden` hides a field's label, not the field).
_READER_ONLY = re.compile(r"sronly|visuallyhidden|screenreader|elementinvisible|assistivetext|offscreen$")
_READER_HINT = re.compile(r"r[-_]?[oO]nly|isually|creen[-_]?[rR]eader|nvisible|ssistive|ffscreen")  # as written


def _hidden_by_class(el: etree._Element) -> bool:
    """Whether the element's class hides it (the substring tests first: a class is read on every element)."""
    value = el.get("class")
    if not value:
        return False
    hiding = ("hid" in value or "-only" in value or "-none" in value or "screen" in value) and _HIDING.search(value)
    if not hiding and not (_READER_HINT.search(value) and _reader_only(value)):
        return False
    return not _SHOWING.search(value)


def _reader_only(value: str) -> bool:
    """Whether a class word is a screen-reader-only utility under a site's own name (_READER_ONLY)."""
    for word in value.lower().split():
        if "label" not in word and "not-sr" not in word:
            if _READER_ONLY.search(word.replace("-", "").replace("_", "")):
                return True
    return False


# The nodes _strip looks at, chosen in C in document order: comments, processing instructions and the dropped
# tags (the HTML parser writes every tag in lower case), and the elements _chrome may call chrome.
_DROPPED = (etree.Comment, etree.ProcessingInstruction, etree.Entity, *_DROP_TAGS)
_MAYBE_CHROME = etree.XPath(" | ".join(
    ["descendant-or-self::*[@role or @hidden]"] + [f"descendant-or-self::{tag}" for tag in sorted(_CHROME_TAGS)]))


# The blocks that hold readers' comments under a page (WordPress's `comments-area`, `commentlist` and `respond`,
# Disqus's thread...): a class word or an id, as written. A single comment's own class (`comment`) is not one.
_COMMENTS = re.compile(r"(?:comments|comment[-_]?(?:list|area|section|wrap|wrapper|container|thread)s?|"
                       r"comments[-_]?(?:list|area|section|wrap|wrapper|container|block|thread)|disqus_thread|"
                       r"respond|comment-respond)", re.I)
_THREAD_KINDS = ("DiscussionForumPosting",)  # a page of these kinds: its comments are its posts


def _declares_thread(el: etree._Element) -> bool:
    """Whether a script is JSON-LD that declares a forum thread (_THREAD_KINDS)."""
    return el.tag == "script" and el.get("type") == "application/ld+json" and any(
        kind in (el.text or "") for kind in _THREAD_KINDS)


def _names_comments(el: etree._Element) -> bool:
    """Whether an element's id or a word of its class names a comment block (_COMMENTS; substring tests first)."""
    for value in (el.get("class"), el.get("id")):
        if value and ("omment" in value or "respond" in value or "disqus" in value) and any(
                _COMMENTS.fullmatch(word) for word in value.split()):
            return True
    return False


def _strip(body: etree._Element, comments: bool) -> None:
    """Remove what a reader does not see as the page's content: dropped tags, chrome, hidden blocks and, unless
    `comments`, the blocks of readers' comments (not on a page that declares itself a thread, _THREAD_KINDS)."""
    for el in list(body.iter(*_DROPPED)):
        comments = comments or _declares_thread(el)
        remove(el)
    text = _TEXT(body)
    if _MARKS.search(text):  # the marks this module sets are not the page's to use (icon fonts write some)
        marked = _MARKS.search
        for el in body.iter():
            if el.text and marked(el.text):
                el.text = el.text.translate(_NO_MARKS)
            if el.tail and marked(el.tail):
                el.tail = el.tail.translate(_NO_MARKS)
    # A <nav> or <header> left unclosed swallows the page after it: chrome holding most of the text stays.
    total = len(text)
    # classes are read in Python: libxml2's XPath tests each element's class at three times the cost
    hidden, sections = [], []
    for el in body.iter(etree.Element):
        if _hidden_by_class(el):
            hidden.append(el)
        elif not comments and _names_comments(el):
            sections.append(el)
    for el in [el for el in _MAYBE_CHROME(body) if _chrome(el)] + hidden:
        if el.getparent() is not None and len(_TEXT(el)) < _HOLDS_PAGE * total:
            remove(el)
    if sections and not any(kind in (el.get("itemtype") or "") for el in body.getroottree().iter(etree.Element)
                             for kind in _THREAD_KINDS):
        _strip_comments(body, sections)


def _strip_comments(body: etree._Element, sections: list[etree._Element]) -> None:
    """Remove the outermost comment blocks still in the page, but one that holds most of its text (_HOLDS_PAGE:
    a thread the page is about)."""
    total = len(_TEXT(body))
    outermost: set[etree._Element] = set()
    for el in sections:
        if not any(parent in outermost for parent in el.iterancestors()):
            outermost.add(el)
            if body in el.iterancestors() and len(_TEXT(el)) < _HOLDS_PAGE * total:  # not in removed chrome
                remove(el)


def _flat(el: etree._Element) -> str:
    """An element's text on one line, its spaces collapsed."""
    return " ".join(_TEXT(el).split())


def _keep_verbatim(body: etree._Element) -> list[tuple[str, int]]:
    """Code blocks and data tables (tables without a table inside: a layout table holds the page, not data) are
    replaced by numbered marks, their text kept aside as the page shows it: a <pre> block's lines and indentation,
    a table's rows one a line with their cells between bars, a rule under a first row of headers."""
    kept: list[tuple[str, int]] = []

    def mark(el: etree._Element, text: str, tag: int) -> None:
        for child in list(el):
            el.remove(child)
        el.text = f"{_VERBATIM_MARK}{len(kept)}{_VERBATIM_MARK}" if text else ""
        kept.append((text, tag))

    for pre in [el for el in body.iter("pre") if next(el.iterancestors("pre"), None) is None]:
        lines = [line.rstrip() for line in _CONTROL.sub("", _TEXT(pre)).split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        mark(pre, "\n".join(lines).rstrip(), _CODE)
    for table in [el for el in body.iter("table") if el.find(".//table") is None]:
        rows = []
        for tr in table.iter("tr"):
            cells = [el for el in tr if el.tag in ("td", "th")]
            texts = [_flat(el).replace("|", "/") for el in cells]
            if any(len(text) > _MAX_CELL_CHARS for text in texts):
                break  # a cell holding paragraphs: a layout table, read as blocks
            if texts:
                header = not rows and len(cells) > 1 and all(el.tag == "th" for el in cells)
                rows.append("| " + " | ".join(texts) + " |")
                if header:
                    rows.append("|" + "---|" * len(cells))
        else:
            if rows:
                caption = " ".join(_flat(el) for el in table.iter("caption")).strip()
                mark(table, "\n".join([caption] + rows if caption else rows), _TABLE)
    return kept


def _space_words(root: etree._Element) -> None:
    """A space between two elements side by side whose texts meet word to word (`<a>Action</a><a>Adventure</a>`,
    `<span>id</span><span>string</span>`): a page lays such items out apart, and its reader sees two words."""
    for el in root.iter(etree.Element):
        if el.tail or el.tag in _BLOCK:
            continue
        after = el.getnext()
        if after is not None and after.tag not in _BLOCK and _TEXT(el)[-1:].isalnum() and _TEXT(after)[:1].isalnum():
            el.tail = " "


def _mark_blocks(root: etree._Element) -> None:
    """A line break at each end of every block element, in its text and its tail, and after the first the mark
    of the block's kind: the element's string value then reads one line per block. A link's text is marked at
    both ends."""
    for a in root.iter("a"):
        a.text = _LINK_OPEN + (a.text or "")
        if len(a):
            a[-1].tail = (a[-1].tail or "") + _LINK_CLOSE
        else:
            a.text += _LINK_CLOSE
    for el in root.iter(*_BLOCK):
        el.text = "\n" + _TAG_MARKS.get(el.tag, "") + (el.text or "")
        el.tail = "\n" + (el.tail or "")


class Line(NamedTuple):
    text: str     # a code block or a table is one line of several
    links: float  # the share of its characters that are link text
    tag: int      # the kind of block it starts (TAGS)


def _render(root: etree._Element, kept: list[tuple[str, int]]) -> str:
    """The marked text of an element (and its tail), spaces collapsed, one line per block, no blank lines."""
    lines = (line.strip() for line in _collapse_spaces(_TEXT(root) + (root.tail or "")).split("\n"))
    return "\n".join(line for line in lines if line)


def _collapse_spaces(text: str) -> str:
    """_SPACES.sub(" ", text), with str.replace in C."""
    return collapse_runs(text, " \t\r\f\v\u00a0", " ")


def _lines(text: str, kept: list[tuple[str, int]]) -> list[Line]:
    """The lines of a rendered text with what its marks said, the marks removed and the verbatim blocks put back
    as they were kept, a line each of theirs."""
    out: list[Line | None] = []
    in_link = 0
    # the marks removed from the whole text at once: its lines and the plain lines stay aligned
    for line, plain in zip(text.split("\n"), _LINE_MARKS.sub("", text).split("\n")):
        tag, i = _OTHER, 0
        while i < len(line) and line[i] in _TAG_OF_MARK:  # the innermost block's mark comes last
            tag, i = _TAG_OF_MARK[line[i]], i + 1
        link = chars = 0
        if _LINK_OPEN in line or _LINK_CLOSE in line or in_link:
            for part in _LINK_SPLIT.split(line):  # a link may hold blocks: its marks are counted across lines
                if part == _LINK_OPEN:
                    in_link += 1
                elif part == _LINK_CLOSE:
                    in_link = max(in_link - 1, 0)
                else:  # its characters but spaces (collapsed by _render) and marks
                    shown = len(part) - part.count(" ") - sum(part.count(mark) for mark in _SHOWN_NOT)
                    chars += shown
                    link += shown if in_link else 0
        plain = plain.strip()
        if "  " in plain:  # a space each side of a removed mark
            plain = _collapse_spaces(plain)
        if not plain:
            continue
        if _VERBATIM_MARK not in plain:
            out.append(Line(plain, link / chars if chars else 0.0, tag))
            continue
        for at, part in enumerate(_VERBATIM_REF.split(plain)):  # text, block number, text...
            if at % 2:
                block, kind = kept[int(part)]
                out.append(Line(block, 0.0, kind) if block else None)
            elif part.strip():
                out.append(Line(part.strip(), link / chars if chars else 0.0, tag))
    return [line for line in out if line is not None]


def text_of(lines: Iterable[str]) -> str:
    """Lines as one text, a line each, every repeat of an earlier line left out: a thread's quoted posts, a
    product's blocks shown twice (the gold text of a page holds them once: cross-validated by site on WCXB dev,
    the region's word F1 goes 0.814 -> 0.827 and the filtered view's 0.855 -> 0.861)."""
    return "\n".join(dict.fromkeys(lines))


def region_text(html: str, comments: bool = False) -> str:
    """The visible text of the page's main region, one line per block ("" when the page cannot be parsed)."""
    return text_of(line.text for line in html_lines(html, comments))


def html_lines(html: str, comments: bool = False) -> list[Line]:
    """region_lines of a page given as markup (none when it cannot be parsed)."""
    try:
        # plain elements (lxml.html's own element classes cost a Python call per element)
        page = _CONTROL.sub("", _XML_DECLARATION.sub("", html, count=1))
        root = lxml.html.fromstring(page, parser=etree.HTMLParser())
    except (etree.ParserError, ValueError):
        return []
    return region_lines(root, comments)


def region_of(root: etree._Element, comments: bool = False) -> str:
    """region_text of a page already parsed (the tree is changed: blocks are removed and marked)."""
    return text_of(line.text for line in region_lines(root, comments))


def region_lines(root: etree._Element, comments: bool = False) -> list[Line]:
    """The lines of region_of, each with its share of link text and the kind of block it starts. Readers'
    comments under the page are left out unless `comments` (as trafilatura's text leaves them out), except on a
    page that declares itself a forum thread (schema.org `DiscussionForumPosting`), whose comments are its posts
    (the JSON-LD of the head is read here, the body's as _strip removes its scripts)."""
    body = root.find(".//body")
    if body is None:
        body = root
    head = root.find("head")
    _strip(body, comments or (head is not None and any(_declares_thread(el) for el in head.iter("script"))))
    kept = _keep_verbatim(body)
    _space_words(body)
    _mark_blocks(body)
    mains = body.xpath(".//main|.//*[@role='main']")
    if len(mains) == 1 and _visible(_render(mains[0], kept), kept) > _MIN_MAIN_CHARS:
        body = mains[0]
    heading = body.find(".//h1")
    if heading is not None:
        heading.text = "\n" + _HEADING_MARK + heading.text[1:]  # after the line break that starts it
    text = _render(body, kept)
    cut = text.find(_HEADING_MARK)
    if cut >= 0 and _visible(text[:cut], kept) <= _MAX_BEFORE_HEADING * _visible(text, kept):
        text = text[cut + 1:].lstrip()
    return _lines(text, kept)


def _visible(text: str, kept: list[tuple[str, int]]) -> int:
    """How many characters a rendered text shows."""
    return len(_VERBATIM_REF.sub(lambda m: kept[int(m.group(1))][0], _LINE_MARKS.sub("", text)))
