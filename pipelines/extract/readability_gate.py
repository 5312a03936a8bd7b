"""trafilatura's readability fallback left out where its text cannot be chosen: the same text, in less time.

After its own extraction, trafilatura (2.3, `external.compare_extraction`) runs a readability port on a copy
of the page and keeps readability's text instead of its own only where (outside recall mode) its own text is
empty, readability's is over twice as long, or its own is structurally poor (no paragraph text, more tables
than paragraphs) and readability's is over twice `min_extracted_size`. Readability took about a fifth of
trafilatura's time on a WCXB page.

Readability's text is a part of the page's text: the paragraphs it keeps, with text moved between elements but
never repeated, and the markup it writes out and reads back gives each text node its own characters again.
So its length, whitespace runs counted as one character, is at most the page's own visible text measured the
same way (`bound`), plus six characters for each iframe (it writes "VIDEO" into those it keeps). Where that
bound is at most twice trafilatura's own text, and the structural rule cannot apply, readability cannot win:
`installed()` then lets trafilatura see it return nothing, as it does when readability fails, and trafilatura
goes on as it would have. Pages whose text could change when written out and read back (text inside raw-text
elements such as <xmp>, control characters, lone surrogates) always run readability.
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
    The tree is changed as readability's first step changes it (scripts, styles and fenced frames dropped), so
    readability run on it afterwards does the same."""
    try:
        for elem in list(tree.iter(*_FIRST_DROPPED)):
            elem.drop_tree()
    except Exception:  # noqa: BLE001 - readability fails at the same element, and trafilatura handles that
        return None
    if next(tree.iter(*_RAW_TEXT), None) is not None:
        return None
    text = _TEXT(tree) + (tree.tail or "")
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


def compare_extraction(cleaned_tree: Any, raw_tree: Any, body: Any, text: str, options: Any) -> Any:
    """trafilatura's compare_extraction, with readability returning nothing where it cannot win."""
    if not cannot_win(raw_tree, body, text, options):
        return _SWAPS[0].original(cleaned_tree, raw_tree, body, text, options)
    with swapped(_SWAPS[1:]):
        return _SWAPS[0].original(cleaned_tree, raw_tree, body, text, options)


def _nothing(htmlinput: Any) -> Any:
    """What trafilatura's try_readability returns when readability fails: an empty element."""
    from lxml.html import HtmlElement

    return HtmlElement()


_SWAPS: list[Swap] = []


def installed() -> AbstractContextManager[None]:
    """trafilatura with the gate in place, for the `with` block only (xpath_walk.swapped)."""
    if not _SWAPS:
        from trafilatura import core, external

        _SWAPS.append(Swap(core, "compare_extraction", core.compare_extraction, compare_extraction))
        _SWAPS.append(Swap(external, "try_readability", external.try_readability, _nothing))
    return swapped(_SWAPS[:1])
