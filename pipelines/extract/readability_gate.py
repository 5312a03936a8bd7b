"""trafilatura's readability fallback left out where its text cannot be chosen: the same text, in less time.

After its own extraction, trafilatura (2.3, `external.compare_extraction`) runs a readability port on a copy
of the page and keeps readability's text instead of its own only where (outside recall mode) its own text is
empty, readability's is over twice as long, or its own is structurally poor (no paragraph text, more tables
than paragraphs) and readability's is over twice `min_extracted_size`. Readability took about a fifth of
trafilatura's time on a WCXB page.

Readability's text is a part of the page's text: the paragraphs it keeps, with text moved between elements but
never repeated, and the markup it writes out and reads back gives each text node its own characters again. So its
length, whitespace runs counted as one character, is at most the page's own visible text measured the same way
(`bound`), plus six characters for each iframe (it writes "VIDEO" into those it keeps). Where that bound is at
most twice trafilatura's own text, and the structural rule cannot apply, readability cannot win: `installed()`
then lets trafilatura see it return nothing, as it does when readability fails, and trafilatura goes on as it
would have; the copy of the page's tree made for readability to change is not made either. Pages whose text could
change when written out and read back (text inside raw-text elements such as <xmp>, control characters, lone
surrogates) always run readability.
tests/test_readability_gate.py checks the bound against readability's own text on real and generated pages.
"""
from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

from lxml import etree

from pipelines.extract.xpath_walk import Swap, swapped

_FIRST_DROPPED = ("script", "style", "fencedframe")  # readability's first step drops these, tails kept
_TEXT = etree.XPath("string()")
# elements whose text an HTML parser reads back raw: written out as markup, it would come back longer
_RAW_TEXT = ("xmp", "noembed", "noframes", "plaintext")
_VIDEO = len(" VIDEO")  # what readability may add for an iframe it keeps: the word and a space around it
# characters that may be written out as references and read back as others (C0 and C1 controls, surrogates)
_UNSTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bound(tree: Any) -> int | None:
    """The most characters readability's text of `tree` can have after trafilatura's trim (whitespace runs
    made one space, ends stripped), or None where the page's text could change in readability's round trip.
    The text of scripts, styles and fenced frames (readability drops them first) is left out of the count: it is
    taken off them while the text is read, and put back."""
    if next(tree.iter(*_RAW_TEXT), None) is not None:
        return None
    dropped = [(elem, elem.text) for elem in tree.iter(*_FIRST_DROPPED) if elem.text]
    try:
        for elem, _ in dropped:
            elem.text = None
        text = _TEXT(tree) + (tree.tail or "")
    finally:
        for elem, held in dropped:
            elem.text = held
    if _UNSTABLE.search(text):
        return None
    return len(" ".join(text.split())) + _VIDEO * sum(1 for _ in tree.iter("iframe"))


def cannot_win(raw_tree: Any, body: Any, text: str, options: Any) -> bool:
    """Whether compare_extraction would keep trafilatura's own `text` (of `body`) whatever readability finds
    on `raw_tree` (the rules in the module's docstring). Only in trafilatura's balanced mode: in precision mode
    the tree is pruned before readability sees it, in recall mode longer texts win more easily."""
    if options.focus != "balanced" or not text:
        return False
    most = bound(raw_tree)
    if most is None or most > 2 * len(text):
        return False
    if most <= 2 * options.min_extracted_size:
        return True
    return bool(body.xpath(".//p//text()")) and len(body.findall(".//table")) <= len(body.findall(".//p"))


def extract_and_compare(cleaned_tree: Any, cleaned_tree_backup: Any, tree: Any, options: Any) -> Any:
    """trafilatura's stages 1 and 2 (core._extract_and_compare: its own extraction, then compare_extraction
    against readability and jusText), with readability returning nothing where it cannot win. Readability
    changes the tree it reads, so trafilatura hands it a copy of the page's tree; where it does not run, the
    page's tree itself goes (compare_extraction reads it for readability only) and the copy is not made."""
    from trafilatura import core

    postbody, temp_text = core.extract_content(cleaned_tree, options)
    if options.fast:
        return postbody, temp_text
    if not cannot_win(tree, postbody, temp_text, options):
        return core.compare_extraction(cleaned_tree_backup, core.copy(tree), postbody, temp_text, options)
    with swapped(_SWAPS[1:]):
        return core.compare_extraction(cleaned_tree_backup, tree, postbody, temp_text, options)


def _nothing(htmlinput: Any) -> Any:
    """What trafilatura's try_readability returns when readability fails: an empty element."""
    from lxml.html import HtmlElement

    return HtmlElement()


_SWAPS: list[Swap] = []


def installed() -> AbstractContextManager[None]:
    """trafilatura with the gate in place, for the `with` block only (xpath_walk.swapped)."""
    if not _SWAPS:
        from trafilatura import core, external

        _SWAPS.append(Swap(core, "_extract_and_compare", core._extract_and_compare, extract_and_compare))
        _SWAPS.append(Swap(external, "try_readability", external.try_readability, _nothing))
    return swapped(_SWAPS[:1])
