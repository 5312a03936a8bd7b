"""HTML to text, as the extractor child runs it: trafilatura's article, the page's main region (page_region.py)
or the region's lines scored as content (page_lines.py), whichever the page router (route.py) predicts is
closer to the page's main content.

The child imports this module, page_region, route and their helpers alone (lxml, trafilatura, the router's
JSON model): no Arrow, no config models, so each worker's extractor process stays small.
"""
from __future__ import annotations

import hashlib
import os
import re
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pipelines.extract import (declared_body, justext_walk, page_meta, page_region, readability_gate,
                                readability_steps, route, xpath_walk)
from pipelines.extract.page_features import html_features
from pipelines.text import collapse_runs

if TYPE_CHECKING:
    from pipelines.config.extract import HtmlSettings

# Elements whose source line breaks are the page's own (and scripts, whose line breaks are syntax).
_VERBATIM_TAGS = ("pre", "code", "textarea", "listing", "xmp", "plaintext", "script", "style")
_VERBATIM = re.compile(rf"<({'|'.join(_VERBATIM_TAGS)})(?=[\s/>])", re.I)
_CLOSE = {tag: re.compile(rf"</{tag}\s*>", re.I) for tag in _VERBATIM_TAGS}


def trafilatura_version() -> str:
    """From the package's metadata: the worker that writes it never imports trafilatura itself (its child does)."""
    from importlib.metadata import version

    return f"trafilatura {version('trafilatura')}"


def extractor_version(settings: HtmlSettings | SimpleNamespace, local: str | None = None) -> str:
    """What the `extractor` column says: trafilatura's version, and the region's and the router's when the
    router chooses between the views, with the name and hash of the router's file where it is not the one
    refinery ships (`route_model`; `local`: a local copy of it where it lies in a bucket)."""
    if not settings.route:
        return trafilatura_version()
    own = router_file(settings)
    if own:
        with open(local or own, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return f"{trafilatura_version()} + {page_region.VERSION} + {route.VERSION} ({os.path.basename(own)} {digest})"
    return f"{trafilatura_version()} + {page_region.VERSION} + {route.VERSION}"


def router_file(settings: HtmlSettings | SimpleNamespace) -> str | None:
    """The router's model file the settings name (`route_model`), or None for the one refinery ships."""
    return getattr(settings, "route_model", None) or None


def extract_html(html: str, url: str | None, settings: HtmlSettings | SimpleNamespace) -> dict[str, Any]:
    """Main text and page metadata of one page (in-process, no deadline). With the router on, `html_text` in the
    result says which view gave the text (`trafilatura`, `region` or `filtered`), `page_type` what kind of page
    the router takes it for and `extract_confidence` the text's predicted word F1 (route.py). A page the router's
    gate takes for an article keeps trafilatura's text before the region is made. Where the page declares an
    article body in its JSON-LD that holds far more of the article than the kept view (declared_body.py), that
    body is the text (`html_text`: `declared`; the confidence stays the router's for the view it replaced)."""
    model = route.load(router_file(settings)) if settings.route else None
    html, tree, text, out, page = _article(html, url, settings, model)
    if model is not None:
        # read before the region changes the tree
        declared = declared_body.declared_body(tree) if tree is not None and "articleBody" in html else ""
        chosen = route.gate(page + route.text_features(text), model)
        if chosen is None:
            x, texts = route.views(html, text, _region(html, tree, settings.include_comments), model, page)
            chosen = route.route(x, model)
            text = texts[chosen.view]
        out.update(html_text=chosen.view, page_type=chosen.page_type, extract_confidence=chosen.confidence)
        if declared and declared_body.prefer(declared, text):
            text, out["html_text"] = declared, "declared"
    out["text"] = text
    return out


def views(html: str, url: str | None, settings: HtmlSettings | SimpleNamespace, with_region: bool = True,
          fast: bool | None = None) -> tuple[str, str, list[page_region.Line], dict[str, Any]]:
    """The page with its lines unwrapped, trafilatura's text, the main region's lines (none without
    `with_region`) and the page's metadata (page_meta.py), from one parse: trafilatura works on a copy, the
    region and the metadata on the tree itself. trafilatura runs without its fallbacks where `fast` says, or
    (None) as extract_html would run it."""
    model = route.load(router_file(settings)) if settings.route and fast is None else None
    html, tree, text, out, _ = _article(html, url, settings, model, fast)
    return html, text, _region(html, tree, settings.include_comments) if with_region else [], out


def _article(html: str, url: str | None, settings: HtmlSettings | SimpleNamespace, model: dict[str, Any] | None,
             fast: bool | None = None) -> tuple[str, Any, str, dict[str, Any], list[float] | None]:
    """The page with its lines unwrapped, its tree (None where it does not parse), trafilatura's text, the
    page's metadata and, with the router's `model`, the markup's features (page_features.py). Unless `fast`
    says, trafilatura runs without its fallbacks with `settings.fast`, or where the router's model says so of
    the markup's features (route.fallbacks)."""
    html = unwrap_lines(html)
    tree = _parse(html)
    page = None if model is None else html_features(html)
    if fast is None:
        fast = settings.fast or (page is not None and not route.fallbacks(page, model))
    text = _trafilatura(html if tree is None else tree, url, settings, fast)
    out = {}
    if settings.metadata and tree is not None:
        out = page_meta.page_metadata(tree, url, settings.metadata_search)
    return html, tree, text, out, page


def _region(html: str, tree: Any, comments: bool) -> list[page_region.Line]:
    """The main region's lines, from the tree (changed in place) or, where the page did not parse, the string;
    readers' comments as trafilatura's text has them (`comments`)."""
    return page_region.html_lines(html, comments) if tree is None else page_region.region_lines(tree, comments)


def _parser() -> Any:
    """trafilatura's HTML parser settings, with every element an lxml.html HtmlElement chosen in C: lxml.html's
    own lookup picks each element's class in Python (form elements get their own), which cost trafilatura about
    9 ms a WCXB page; trafilatura never uses the form classes (its text is identical on 300 WCXB pages)."""
    global _PARSER
    if _PARSER is None:
        from lxml import etree
        from lxml import html as lxml_html

        _PARSER = lxml_html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                                       remove_comments=True, remove_pis=True)
        _PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
            element=lxml_html.HtmlElement, comment=lxml_html.HtmlComment, pi=lxml_html.HtmlProcessingInstruction,
            entity=lxml_html.HtmlEntity))
    return _PARSER


_PARSER: Any = None


def _parse(html: str) -> Any:
    """The page parsed as trafilatura's load_html parses it (its repairs and checks, with _parser()), then read
    as a browser shows it (after_end, without_script_notices, streamed_in), or None where it cannot be parsed
    (trafilatura and the region then parse the string themselves, and fail or not as they do alone)."""
    from lxml.html import fromstring
    from trafilatura.utils import is_dubious_html

    try:
        beginning = html[:50].lower()
        dubious = is_dubious_html(beginning)
        html = _repair(html, beginning)
        try:
            tree = fromstring(html, parser=_parser())
        except ValueError:  # a string that declares its encoding: lxml takes it as bytes
            tree = None
        if tree is None or len(tree) < 1:
            tree = fromstring(html.encode("utf-8", "surrogatepass"), parser=_parser())
    except Exception:  # noqa: BLE001 - lxml's errors on broken markup are many; the views judge the page
        return None
    if tree is None or (dubious and len(tree) < 2):
        return None
    tree = after_end(tree)
    if "noscript" in html or "NOSCRIPT" in html:
        tree = without_script_notices(tree)
    return streamed_in(tree) if _STREAMED in html else tree


_NOTICE_CHARS = 400  # a <noscript> block with at most this much text that names JavaScript is a notice


def without_script_notices(tree: Any) -> Any:
    """The page without the notices it shows only where scripts do not run. A browser that runs the page's
    scripts never shows a `<noscript>` block; most such blocks hold what a crawler needs (a forum's posts, as
    Discourse sends them) and are read, but a short one that names JavaScript asks the reader to turn it on
    ("You need to enable JavaScript to run this app.", "JavaScript is disabled...") and is no part of the page:
    81 of WCXB dev's and the modern pages' 1,830 have one. A page that is nothing else then has no text."""
    for el in list(tree.iter("noscript")):
        text = "".join(el.itertext())
        if len(text) <= _NOTICE_CHARS and "javascript" in text.lower():
            page_region.remove(el)  # its tail stays
    return tree


def after_end(tree: Any) -> Any:
    """The page with what its markup has after `</html>` moved to the end of its body, where a browser reads
    it (HTML5's "after after body" mode). lxml makes that content a second root element that no view reads;
    some sites close the document early and put the whole article after it."""
    trailing = [el for el in tree.itersiblings() if isinstance(el.tag, str)]
    if not trailing:
        return tree
    from lxml.etree import SubElement

    body = tree.find("body")
    if body is None:
        body = SubElement(tree, "body")
    for root in trailing:
        if root.text:
            _append_text(body, root.text)
            root.text = None
        for part in list(root):
            root.remove(part)  # its tail goes with it
            if part.tag not in ("head", "body"):
                body.append(part)
                continue
            if part.tag == "body":  # a second document's body: its text and children (its head is not text)
                if part.text:
                    _append_text(body, part.text)
                body.extend(list(part))
            if part.tail:
                _append_text(body, part.tail)
    return tree


_STREAMED = 'id="S:'  # how a streaming renderer's blocks are written (React's, as Next.js sends them)


def streamed_in(tree: Any) -> Any:
    """The page with what a streaming renderer sends late put where the page shows it. Such a page is sent with
    placeholders (`<template id="B:n">` for a block, `<template id="P:n">` for a part of one) and the content
    itself later, hidden at the end of the body (`<div hidden id="S:n">`), with a script that moves its content
    into the placeholder's place; refinery runs no script, so it moves it here. Without this, content outside
    the page's `<main>` is missed by the region, and trafilatura reads an article's paragraphs apart from its
    heading or not at all. Content without a placeholder stays as it is."""
    late = {el.get("id")[2:]: el for el in tree.iterfind(".//*[@hidden][@id]") if el.get("id").startswith("S:")}
    if not late:
        return tree
    for placeholder in list(tree.iter("template")):
        name = placeholder.get("id") or ""
        content = late.pop(name[2:], None) if name[:2] in ("B:", "P:") else None
        if content is not None and placeholder.getparent() is not None and not _inside(placeholder, content):
            page_region.remove(content)  # its tail stays where it was
            _put_in_place(placeholder, content)
    return tree


def _inside(el: Any, other: Any) -> bool:
    """Whether `el` is `other` or inside it (content cannot be moved into itself)."""
    return el is other or any(a is other for a in el.iterancestors())


def _put_in_place(placeholder: Any, content: Any) -> None:
    """`content`'s text and children where `placeholder` is, the placeholder removed, the text after it kept."""
    parent = placeholder.getparent()
    at = parent.index(placeholder)
    if content.text:
        _text_before(placeholder, content.text)
    children = list(content)
    for offset, child in enumerate(children):
        parent.insert(at + offset, child)  # each with its tail
    if placeholder.tail:
        if children:
            children[-1].tail = (children[-1].tail or "") + placeholder.tail
        else:
            _text_before(placeholder, placeholder.tail)
    parent.remove(placeholder)


def _text_before(el: Any, text: str) -> None:
    """`text` added just before `el`: to its previous sibling's tail, or its parent's text."""
    before = el.getprevious()
    if before is not None:
        before.tail = (before.tail or "") + text
    else:
        parent = el.getparent()
        parent.text = (parent.text or "") + text


def _append_text(body: Any, text: str) -> None:
    """`text` added after the body's last child (its tail), or to the body's own text where it has none."""
    if len(body):
        body[-1].tail = (body[-1].tail or "") + text
    else:
        body.text = (body.text or "") + text


_XML_REFUSES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])  # control characters XML refuses


def _repair(html: str, beginning: str) -> str:
    """trafilatura's repair_faulty_html (2.3), the same string in less time: its regex scan for the characters
    XML refuses takes 1.3 ms on a WCXB page, a check of the page's UTF-8 bytes in C 0.4 ms. A page that has
    any goes to trafilatura's own function; a page that has none gets its other two repairs: the first line's
    DOCTYPE with a stray slash, and a self-closing <html .../> in the first four lines."""
    from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, repair_faulty_html

    data = html.encode("utf-8", "surrogatepass")
    if len(data.translate(None, _XML_REFUSES)) != len(data) or "\ufffe" in html or "\uffff" in html:
        return repair_faulty_html(html, beginning)
    if "doctype" in beginning:
        first, _, rest = html.partition("\n")
        html = DOCTYPE_TAG.sub("", first, count=1) + "\n" + rest
    if any("<html" in line and line.endswith("/>") for line in html[:4096].splitlines()[:4]):
        html = FAULTY_HTML.sub(r"\1>", html, count=1)
    return html


def unwrap_lines(html: str) -> str:
    """The page with its source's line breaks made spaces, as a browser shows them, except inside <pre>, <code>,
    <textarea> and scripts. Paragraphs hard-wrapped in the source (common in translated and generated manuals)
    are then one line each in the extracted text, whichever view extracts them, and line-based rules measure
    the page's lines rather than its source's."""
    if "\n" not in html and "\r" not in html:
        return html
    out, at = [], 0
    while True:
        start = _VERBATIM.search(html, at)
        if start is None:
            out.append(_spaces_for_breaks(html[at:]))
            return "".join(out)
        out.append(_spaces_for_breaks(html[at:start.start()]))
        end = _CLOSE[start.group(1).lower()].search(html, start.end())
        if end is None:  # never closed: the rest of the page is inside it
            out.append(html[start.start():])
            return "".join(out)
        out.append(html[start.start():end.end()])
        at = end.end()


def _spaces_for_breaks(text: str) -> str:
    """Each run of line breaks (CR, LF) made one space, in a third of a regex substitution's time."""
    return collapse_runs(text, "\n\r", " ")


def _trafilatura(html: Any, url: str | None, settings: HtmlSettings | SimpleNamespace, fast: bool) -> str:
    import trafilatura

    # the same text: its class and id tests, its jusText fallback and readability's steps run faster, and
    # readability runs only where its text could be chosen (xpath_walk.py, justext_walk.py, readability_steps.py,
    # readability_gate.py)
    with xpath_walk.installed(), justext_walk.installed(), readability_steps.installed(), \
            readability_gate.installed():
        result = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=False,  # page_meta.py reads it
            as_dict=True,
            deduplicate=False,  # a per-process cache: output would depend on document order (DESIGN.md)
            include_comments=settings.include_comments,
            include_tables=settings.include_tables,
            favor_precision=settings.favor_precision,
            favor_recall=settings.favor_recall,
            fast=fast,  # settings.fast, or the router's choice (route.fallbacks)
        )
    return (result or {}).get("text") or ""


def html_setup(settings: dict[str, Any]) -> SimpleNamespace:
    """In the extractor child: the settings (sent as a plain dict, so the child never imports the config
    models), trafilatura imported and a small page extracted before "ready" (the deadline covers extraction
    only)."""
    import trafilatura  # noqa: F401

    ready = SimpleNamespace(**settings)
    try:  # the router's model, trafilatura's walks and stop lists loaded before the first page's deadline
        extract_html(_WARM_PAGE, None, ready)
    except Exception:  # noqa: BLE001 - a page that fails here fails as the job it is, later
        pass
    return ready


_WARM_PAGE = ("<html><head><title>Notes</title></head><body><nav><a href='/'>Home</a></nav><article><h1>Notes</h1>"
              + "<p>A short page of plain text, read once when the extractor starts.</p>" * 3
              + "<table><tr><td>a</td><td>b</td></tr></table><ul><li>one</li></ul></article></body></html>")


def html_job(job: tuple[str, str | None], settings: SimpleNamespace, report: Any) -> dict[str, Any]:
    html, url = job
    return extract_html(html, url, settings)
