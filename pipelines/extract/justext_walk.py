"""trafilatura's jusText fallback, giving the same output in less time.

jusText's paragraphs, as trafilatura's fallback asks for them, come from one walk of the tree: the same
paragraphs, the same classes, the same text, in about a third of the time.

trafilatura calls jusText on about one WCXB page in five (a short or unclean extraction, and the recall retry),
and jusText then took a quarter of trafilatura's time on the page: its paragraph maker hears the tree through
lxml's SAX producer (a namespace tuple and an attribute object per element), builds an XPath string for each
paragraph it starts (trafilatura never reads it), and joins and normalises a paragraph's text again each time
the classifier asks for it. Here the tree is walked directly with the maker's own rules, a paragraph's text is
computed once, and jusText's own classification runs on the result.

`installed()` puts it in place of trafilatura's for a `with` block only; tests/test_fast_paths.py compares
them with trafilatura's on real pages and generated trees.
"""
from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

from lxml.etree import Comment, ProcessingInstruction

from pipelines.extract.xpath_walk import Swap, swapped

_RUN = re.compile(r"\s+")


def normalize_whitespace(text: str) -> str:
    """jusText's normalize_whitespace: each run of whitespace one space, or one line feed where the run holds
    a CR or LF; `str.split` where the text has neither (it splits on the same characters as the regex `\\s`)."""
    if "\n" in text or "\r" in text:
        return _RUN.sub(_one, text)
    core = " ".join(text.split())
    if not core:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + core + (" " if text[-1].isspace() else "")


def _one(match: re.Match[str]) -> str:
    run = match.group()
    return "\n" if "\n" in run or "\r" in run else " "


class Paragraph:
    """One of jusText's paragraphs, finished: its text, word counts and heading test computed once."""

    __slots__ = ("dom_path", "text", "chars_count_in_links", "tags_count", "class_type", "cf_class", "heading",
                 "_words")

    def __init__(self, dom_path: str, text: str, chars_in_links: int, tags: int) -> None:
        self.dom_path = dom_path
        self.text = text
        self.chars_count_in_links = chars_in_links
        self.tags_count = tags
        self.class_type = ""
        self._words: list[str] | None = None

    @property
    def is_heading(self) -> bool:
        return bool(_HEADING.search(self.dom_path))

    @property
    def is_boilerplate(self) -> bool:
        return self.class_type != "good"

    def __len__(self) -> int:
        return len(self.text)

    def _split(self) -> list[str]:
        if self._words is None:
            self._words = self.text.split()
        return self._words

    @property
    def words_count(self) -> int:
        return len(self._split())

    def stopwords_count(self, stopwords: frozenset[str]) -> int:
        return sum(word.lower() in stopwords for word in self._split())

    def stopwords_density(self, stopwords: frozenset[str]) -> float:
        words = self._split()
        if not words:
            return 0
        return self.stopwords_count(stopwords) / len(words)

    def links_density(self) -> float:
        if not self.text:
            return 0
        return self.chars_count_in_links / len(self.text)


_HEADING = re.compile(r"\bh\d\b")


class _Maker:
    """jusText's ParagraphMaker rules over lxml's SAX events (start, characters, end), without the events."""

    def __init__(self, paragraph_tags: frozenset[str]) -> None:
        self.paragraph_tags = paragraph_tags
        self.doms = [""]  # the dotted tag path at each depth
        self.paragraphs: list[Paragraph] = []
        self.link = False
        self.br = False
        self._new()

    def _new(self) -> None:
        self.dom = self.doms[-1]
        self.nodes: list[str] = []
        self.in_links = 0
        self.tags = 0

    def flush(self) -> None:
        """jusText's _start_new_pragraph: the paragraph in hand is kept when its text is not empty."""
        if self.nodes:
            text = normalize_whitespace("".join(self.nodes).strip())
            if text:
                self.paragraphs.append(Paragraph(self.dom, text, self.in_links, self.tags))
        self._new()

    def characters(self, content: str) -> None:
        if not content or content.isspace():
            return
        text = normalize_whitespace(content)
        self.nodes.append(text)
        if self.link:
            self.in_links += len(text)
        self.br = False

    def walk(self, element: Any) -> None:
        tag = element.tag
        if tag is Comment or tag is ProcessingInstruction:
            if element.tail:
                self.characters(element.tail)
            return
        name = tag.split("}", 1)[1] if tag[0] == "{" else tag  # a non-string tag (an entity) fails, as in SAX
        doms = self.doms
        doms.append(name if len(doms) == 1 else doms[-1] + "." + name)
        if name in self.paragraph_tags or (name == "br" and self.br):
            if name == "br":
                self.tags -= 1  # <br><br> separates paragraphs and is not counted as a tag of either
            self.flush()
        else:
            self.br = name == "br"
            if self.br:
                self.nodes.append(" ")
            elif name == "a":
                self.link = True
            self.tags += 1
        if element.text:
            self.characters(element.text)
        for child in element:
            self.walk(child)
        doms.pop()
        if name in self.paragraph_tags:
            self.flush()
        if name == "a":
            self.link = False
        if element.tail:
            self.characters(element.tail)


def make_paragraphs(root: Any) -> list[Paragraph]:
    """jusText's ParagraphMaker.make_paragraphs(root): the processing instructions before and after the root
    give their tails, as lxml's SAX producer gives them."""
    from justext.core import PARAGRAPH_TAGS

    root = root.getroot() if hasattr(root, "getroot") else root
    maker = _Maker(PARAGRAPH_TAGS)
    before, after = [], []
    if hasattr(root, "getprevious"):
        sibling = root.getprevious()
        while getattr(sibling, "tag", None) is ProcessingInstruction:
            before.append(sibling)
            sibling = sibling.getprevious()
        sibling = root.getnext()
        while getattr(sibling, "tag", None) is ProcessingInstruction:
            after.append(sibling)
            sibling = sibling.getnext()
    for element in [*before[::-1], root, *after]:
        maker.walk(element)
    maker.flush()
    return maker.paragraphs


def try_justext(tree: Any, url: str | None, target_language: str | None) -> Any:
    """trafilatura's try_justext (2.3) with make_paragraphs above: the same body of <p> elements."""
    import logging

    from justext.core import classify_paragraphs, revise_paragraph_classification
    from justext.utils import get_stoplist
    from lxml.etree import Element, SubElement
    from trafilatura import external
    from trafilatura.settings import JUSTEXT_LANGUAGES

    body = Element("body")
    if target_language in JUSTEXT_LANGUAGES:
        stoplist = get_stoplist(JUSTEXT_LANGUAGES[target_language])
    else:
        stoplist = external.JT_STOPLIST or external.jt_stoplist_init()
    try:
        paragraphs = make_paragraphs(tree)
        classify_paragraphs(paragraphs, stoplist, 50, 150, 0.1, 0.2, 0.25, True)
        revise_paragraph_classification(paragraphs, 150)
    except Exception as err:  # noqa: BLE001 - as trafilatura: a failure is an empty body
        logging.getLogger("trafilatura.external").error("justext %s %s", err, url)
    else:
        for paragraph in paragraphs:
            if not paragraph.is_boilerplate:
                SubElement(body, "p").text = paragraph.text
    return body


_SWAPS: list[Swap] = []


def installed() -> AbstractContextManager[None]:
    """trafilatura with try_justext above, for the `with` block only (xpath_walk.swapped)."""
    if not _SWAPS:
        from trafilatura import external

        _SWAPS.append(Swap(external, "try_justext", external.try_justext, try_justext))
    return swapped(_SWAPS)
