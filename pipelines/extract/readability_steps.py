"""Three steps of trafilatura's readability port (2.3, `readability_lxml.Document`) done in less time, with the
same tree at the end of each: readability runs on about half of the WCXB dev pages, and a run went from 5.7 to
5.2 ms with them (benchmarks/README.md, stop 47).

- `remove_unlikely_candidates`: the verdict on an element's class and id is remembered by the pair of values,
  not by their joined text, which trafilatura builds for every element first.
- `transform_misused_divs_into_paragraphs`: whether a <div> holds a block element (a tag starting with one of
  `DIV_TO_P_PREFIXES`) is read from one pass over the tree, where trafilatura walks each div's descendants, so
  nested divs are walked again and again. The divs change in document order and a div's descendants come after
  it, so each div is judged on the tags the pass saw. Its second part (text into new <p>s) is trafilatura's.
- `class_weight`: the weight is remembered by the class and id values (pages repeat them), for every page in
  this process, up to MEMO_LIMIT values.

Each stand-in is put in place only over the method whose source it was written against (`_WRITTEN_FOR`, a hash
of the method's source): another trafilatura keeps its own. `installed()` puts them in place for a `with` block.
tests/test_readability_steps.py compares readability's output with and without them on real and generated pages.
"""
from __future__ import annotations

import hashlib
import inspect
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pipelines.extract.xpath_walk import Swap, swapped

MEMO_LIMIT = 4096
_WEIGHTS: dict[tuple[str | None, str | None], int] = {}


def remove_unlikely_candidates(self: Any) -> None:
    from trafilatura.readability_lxml import FRAME_TAGS, REGEXES

    unlikely, maybe = REGEXES["unlikelyCandidatesRe"].search, REGEXES["okMaybeItsACandidateRe"].search
    verdicts: dict[tuple[str | None, str | None], bool] = {}
    for elem in self.doc.findall(".//*"):
        get = elem.get
        key = (get("class"), get("id"))
        if key == (None, None):
            continue
        verdict = verdicts.get(key)
        if verdict is None:
            attrs = " ".join(filter(None, key))
            low = attrs.lower()
            verdict = verdicts[key] = len(attrs) >= 2 and bool(unlikely(low)) and not maybe(low)
        if verdict and elem.tag not in FRAME_TAGS:
            elem.drop_tree()


def transform_misused_divs_into_paragraphs(self: Any) -> None:
    from trafilatura.readability_lxml import DIV_TO_P_PREFIXES, fragment_fromstring

    doc = self.doc
    block: dict[Any, bool] = {}
    holders: set[Any] = set()  # elements with a block element among their descendants
    for elem in doc.iterdescendants("*"):
        tag = elem.tag
        is_block = block.get(tag)
        if is_block is None:
            is_block = block[tag] = str(tag).startswith(DIV_TO_P_PREFIXES)
        if is_block:
            parent = elem.getparent()
            while parent is not None and parent not in holders:  # a holder's ancestors are holders already
                holders.add(parent)
                parent = parent.getparent()
    for elem in doc.findall(".//div"):
        if elem not in holders and (elem.find(".//a") is None or elem.xpath("text()[normalize-space()]")):
            elem.tag = "p"

    for elem in doc.findall(".//div"):
        if elem.text and elem.text.strip():
            p_elem = fragment_fromstring("<p/>")
            p_elem.text, elem.text = elem.text, None
            elem.insert(0, p_elem)
        for pos, child in reversed(list(enumerate(elem))):
            if child.tail and child.tail.strip():
                p_elem = fragment_fromstring("<p/>")
                p_elem.text, child.tail = child.tail, None
                elem.insert(pos + 1, p_elem)
            if child.tag == "br":
                child.drop_tree()


def class_weight(self: Any, elem: Any) -> int:
    key = (elem.get("class"), elem.get("id"))
    weight = _WEIGHTS.get(key)
    if weight is None:
        from trafilatura.readability_lxml import REGEXES

        negative, positive = REGEXES["negativeRe"].search, REGEXES["positiveRe"].search
        weight = 0
        for attribute in filter(None, key):
            if negative(attribute):
                weight -= 25
            if positive(attribute):
                weight += 25
        if len(_WEIGHTS) >= MEMO_LIMIT:
            _WEIGHTS.clear()
        _WEIGHTS[key] = weight
    return weight


# sha256 (first 16 hex digits) of the source of the trafilatura method each stand-in was written against
_WRITTEN_FOR = {
    "remove_unlikely_candidates": "6ef38c8475242af9",
    "transform_misused_divs_into_paragraphs": "8c48b6cf632ab198",
    "class_weight": "d97a398e8ac23fa0",
}
_STAND_INS = {"remove_unlikely_candidates": remove_unlikely_candidates,
              "transform_misused_divs_into_paragraphs": transform_misused_divs_into_paragraphs,
              "class_weight": class_weight}
_SWAPS: list[Swap] | None = None


def source_hash(method: Any) -> str:
    return hashlib.sha256(inspect.getsource(method).encode("utf-8")).hexdigest()[:16]


def swaps() -> list[Swap]:
    """The stand-ins whose trafilatura method is the one they were written against."""
    global _SWAPS
    if _SWAPS is None:
        from trafilatura.readability_lxml import Document

        _SWAPS = []
        for name, stand_in in _STAND_INS.items():
            original = Document.__dict__.get(name)
            try:
                same = original is not None and source_hash(original) == _WRITTEN_FOR[name]
            except (OSError, TypeError):  # no source to read (a frozen or compiled install)
                same = False
            if same:
                _SWAPS.append(Swap(Document, name, original, stand_in))
    return _SWAPS


def installed() -> AbstractContextManager[None]:
    """readability with the faster steps, for the `with` block only."""
    found = swaps()
    return swapped(found) if found else nullcontext()
