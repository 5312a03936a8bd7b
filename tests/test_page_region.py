"""HTML beyond news: the page's main region, kept where the page router prefers it, measured on modern pages."""
from __future__ import annotations

import collections
import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from pipelines.extract import page_region
from pipelines.config.base import ConfigError
from pipelines.config.curate import parse_config
from pipelines.config.extract import HtmlSettings
from pipelines.extract.html import extract_html, extractor_version, unwrap_lines
from pipelines.read.charsets import decode_html
from pipelines.text import shingle_f1

MODERN = Path(__file__).parent / "data" / "modern"
TRAFILATURA_ALONE = HtmlSettings(route=False)


@pytest.fixture(scope="module")
def modern_scores() -> dict[str, list[tuple[str, float, float, str]]]:
    """Per page: (type, F1 of refinery's default, F1 of trafilatura alone, which text the default took)."""
    truth = json.loads((MODERN / "ground-truth.json").read_text())
    out = []
    for name, entry in sorted(truth.items()):
        html, _ = decode_html(gzip.open(MODERN / "html" / f"{name}.html.gz").read())
        new = extract_html(html, entry["url"], HtmlSettings())
        old = extract_html(html, entry["url"], TRAFILATURA_ALONE)
        assert "html_text" not in old
        out.append((entry["type"], shingle_f1(new["text"], entry["articleBody"]),
                    shingle_f1(old["text"], entry["articleBody"]), new["html_text"]))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_modern_pages_gain_over_trafilatura_alone(modern_scores):
    assert len(modern_scores) == 35 and len({t for t, *_ in modern_scores}) == 7
    new = _mean([s[1] for s in modern_scores])
    old = _mean([s[2] for s in modern_scores])
    print(f"modern subset F1: refinery {new:.3f}, trafilatura alone {old:.3f}")
    assert new >= 0.76  # measured 0.767 (router 10; 0.768 router 9: two listing pages keep more lines under the cut
    # relative to the page's best line, 0.525 -> 0.283 and 0.831 -> 0.661, while all 333 modern pages go 0.820 ->
    # 0.828 and the cross-validated modern figure 0.834 -> 0.836; router 8 0.776, router 7 0.775, router 5 0.787,
    # router 4 0.811; trafilatura alone: 0.707), on pages the router was fitted on; two collection pages lost items
    # their classes hide (gold has them), see the README, and router 7 reads a repeated line once, where two
    # collection pages' gold repeats their items' colours and prices (on all 333 modern pages: 0.816 against router
    # 6's 0.815)
    assert new >= old + 0.04
    # trafilatura keeps the articles; the other pages take the filtered region, a few the whole region
    # (measured: 5, 28 and 2 of the 35)
    views = collections.Counter(s[3] for s in modern_scores)
    assert views["trafilatura"] >= 4 and views["filtered"] >= 20 and views["region"] <= 10, views
    articles = [s[3] for s in modern_scores if s[0] == "article"]
    assert articles.count("trafilatura") >= 4, articles


def test_articles_are_not_worse(modern_scores):
    new = [s[1] for s in modern_scores if s[0] == "article"]
    old = [s[2] for s in modern_scores if s[0] == "article"]
    assert _mean(new) >= _mean(old) - 1e-9


def test_listing_forum_and_documentation_pages_gain(modern_scores):
    # measured (router 7): listing +0.16, forum +0.19, documentation +0.09, collection +0.19
    for kind, gain in (("listing", 0.04), ("forum", 0.1), ("documentation", 0.05), ("collection", 0.15)):
        new = _mean([s[1] for s in modern_scores if s[0] == kind])
        old = _mean([s[2] for s in modern_scores if s[0] == kind])
        assert new > old + gain, (kind, new, old)


PAGE = """<html><head><title>t</title><script>var menu = "never";</script></head><body>
<header><a href="/">Home</a> <a href="/shop">Shop</a></header>
<nav><ul><li>Products</li><li>About</li></ul></nav>
<div class="crumbs">Home / Shop / Kettles</div>
<main>
  <article><header><h1>Steel kettle</h1></header>
  <p>A kettle of brushed steel that holds 1.7 litres.</p>
  <table><tr><th>Power</th><td>2200 W</td></tr><tr><th>Weight</th><td>1.1 kg</td></tr></table>
  <div hidden>a hidden coupon</div>
  <form><label>Quantity</label><input value="17"><select><option>Blue</option></select></form>
  <p>Boils a full kettle in under four minutes<!-- a comment --> and switches itself off.</p>
  </article>
</main>
<aside>Related: a teapot</aside>
<footer>Copyright the shop</footer>
</body></html>"""


def test_region_keeps_the_main_blocks_and_drops_page_chrome():
    text = page_region.region_text(PAGE * 1)
    lines = text.split("\n")
    assert lines[0] == "Steel kettle"  # the article's own header is kept; the text starts at its heading
    assert "A kettle of brushed steel that holds 1.7 litres." in lines
    assert "Power" in text and "2200 W" in text and "1.1 kg" in text
    assert "Boils a full kettle in under four minutes and switches itself off." in lines
    assert "Quantity" in lines  # a label's text is shown on the page; a field's value and options are not
    for chrome in ("Home", "Products", "never", "hidden coupon", "17", "Blue", "teapot", "Copyright"):
        assert chrome not in text, chrome


def test_a_page_without_main_reads_the_body():
    page = "<html><body><nav>Menu</nav><div><h1>Title</h1><p>First paragraph.</p></div></body></html>"
    assert page_region.region_text(page) == "Title\nFirst paragraph."
    assert page_region.region_text("") == ""
    xhtml = '<?xml version="1.0" encoding="utf-8"?>\n' + page
    assert page_region.region_text(xhtml) == "Title\nFirst paragraph."


def test_a_hard_wrapped_paragraph_is_one_line_and_pre_keeps_its_lines():
    """A line break in the source of a paragraph is a space on the page (translated manuals are often wrapped
    at 80 columns, and trafilatura keeps such breaks around inline code); in <pre> and <code> it is the page's."""
    page = ("<html><body><article><h1>Title</h1><p>Por omissão existem seis consolas de\n<code>tty</code>\n"
            "alternáveis na máquina Linux, cada uma com o seu próprio\nlogin e ambiente de trabalho.<br>"
            "Outra linha.</p><pre>$ ls\n<b>a</b>\nb</pre><p>after\nthe <code>x\ny</code> code</p>"
            "<script>// a comment\nvar x = 1;</script></article></body></html>")
    unwrapped = unwrap_lines(page)
    assert "<pre>$ ls\n<b>a</b>\nb</pre>" in unwrapped and "<code>x\ny</code>" in unwrapped
    assert "// a comment\nvar" in unwrapped
    assert unwrap_lines("<p>a\r\nb</p><pre>c\nd") == "<p>a b</p><pre>c\nd"  # an unclosed <pre> holds the rest
    lines = ["Title", "Por omissão existem seis consolas de tty alternáveis na máquina Linux, cada uma com o seu "
             "próprio login e ambiente de trabalho.", "Outra linha."]
    assert page_region.region_text(unwrapped).split("\n")[:3] == lines
    assert extract_html(page, None, HtmlSettings())["text"].split("\n")[:3] == lines


DOC_PAGE = """<html><body><nav><a href="/">Docs</a></nav><main><h1>Installing the widget tool</h1>
<p>This guide installs the widget tool on a Linux machine and checks the result with a short test run.</p>
<pre><code>
pip install widget
if widget --check; then
    echo ok   

fi
</code></pre>
<table><caption>Supported platforms</caption><thead><tr><th>Platform</th><th>Status</th></tr></thead>
<tbody><tr><td>Linux</td><td>supported | tested</td></tr><tr><td><b>macOS</b>
</td><td>beta</td></tr></tbody></table>
<table><tr><td><p>%s</p></td><td>a layout cell</td></tr></table>
</main></body></html>"""


def test_region_keeps_code_lines_and_table_rows():
    """Code keeps its lines and indentation; a data table reads a row a line, cells between bars, a rule under its
    header row; a table whose cells hold paragraphs is read as blocks."""
    long_paragraph = "A paragraph of a page laid out in a table cell, long enough to be prose. " * 8
    text = page_region.region_text(unwrap_lines(DOC_PAGE % long_paragraph))
    lines = text.split("\n")
    assert "pip install widget\nif widget --check; then\n    echo ok\n\nfi" in text
    start = lines.index("Supported platforms")
    assert lines[start + 1:start + 5] == ["| Platform | Status |", "|---|---|", "| Linux | supported / tested |",
                                          "| macOS | beta |"]
    assert long_paragraph.strip() in lines and "a layout cell" in lines
    assert "\ue001" not in text


def test_region_marks_never_collide_with_the_page():
    """The private-use marks that hold code and tables aside are taken out of the page's own text first."""
    page = ("<body><h1>T</h1><p>\ue0010\ue001 and \ue000 \ue002\ue003\ue010\ue014</p><pre>x\n y</pre>"
            "<table><tr><td>c</td></tr></table></body>")
    text = page_region.region_text(page)
    assert text == "T\n0 and\nx\n y\n| c |"
    # in a tail, and written as character references (as icon fonts write them)
    page = "<body><h1>T</h1><p><i>&#xe001;</i>&#xe010;tail <b>b</b>&#xe001;0&#xe001; end</p><pre>a\n b</pre></body>"
    assert page_region.region_text(page) == "T\ntail b0 end\na\n b"


def test_region_lines_say_their_link_share_and_block():
    """Each line of the region says how much of it is link text (a link holding blocks counts on each of its
    lines) and what kind of block it starts; a code block or a table is one line."""
    page = ("<body><main><h1>Kettle</h1><p>Read the <a href='/m'>manual</a> first.</p>"
            "<ul><li><a href='/a'>Accessories</a></li><li>Spare lid</li></ul>"
            "<a href='/card'><div>Card title</div><div>Card text</div></a>"
            "<pre>x = 1\ny = 2</pre><table><tr><td>Power</td><td>2200 W</td></tr></table></main></body>")
    lines = page_region.html_lines(page)
    tags = page_region.TAGS
    assert [line.text for line in lines] == ["Kettle", "Read the manual first.", "Accessories", "Spare lid",
                                            "Card title", "Card text", "x = 1\ny = 2", "| Power | 2200 W |"]
    assert [tags[line.tag] for line in lines] == ["heading", "paragraph", "item", "item", "other", "other",
                                                 "code", "table"]
    assert lines[1].links == pytest.approx(6 / 19) and lines[2].links == 1.0 and lines[3].links == 0.0
    assert lines[4].links == lines[5].links == 1.0 and lines[0].links == lines[6].links == 0.0


def test_the_region_holds_a_repeated_line_once():
    """A post quoted in the replies below it is read once, where it first shows; its lines are all still
    there to score (a repeat is a hint that a line is not content)."""
    page = ("<body><main><h1>Best kettle?</h1><div class='post'><p>Which kettle boils fastest?</p></div>"
            "<div class='post'><blockquote><p>Which kettle boils fastest?</p></blockquote><p>Mine, in two minutes.</p>"
            "<p>Reply</p></div><div class='post'><p>Thanks.</p><p>Reply</p></div></main></body>")
    assert page_region.region_text(page).split("\n") == [
        "Best kettle?", "Which kettle boils fastest?", "Mine, in two minutes.", "Reply", "Thanks."]
    assert [line.text for line in page_region.html_lines(page)].count("Reply") == 2


def test_a_hidden_tab_or_accordion_panel_is_read_and_other_hidden_blocks_are_not():
    """A panel that its tab or its accordion button opens (role tabpanel or region, or named by its control with
    aria-labelledby) is content the reader opens; a hidden dialog or menu, or a plain hidden block, is not."""
    page = ("<body><main><h1>Send an SMS</h1><div role='tablist'><button role='tab'>Python</button>"
            "<button role='tab'>Node.js</button></div>"
            "<div role='tabpanel'><pre>client.messages.create(body='Hi')</pre></div>"
            "<div role='tabpanel' hidden><pre>client.messages.create({body: 'Hi'})</pre></div>"
            "<h2>FAQ</h2><button aria-controls='a1'>Can I send to any country?</button>"
            "<div id='a1' aria-labelledby='q1' hidden><p>Yes, to 180 countries.</p></div>"
            "<section role='region' hidden><p>Prices are per message.</p></section>"
            "<div role='dialog' aria-labelledby='t' hidden><p>Subscribe to our newsletter</p></div>"
            "<div role='menu' hidden><p>Account settings</p></div><div hidden>A coupon</div></main></body>")
    assert page_region.region_text(page).split("\n") == [
        "Send an SMS", "Python Node.js", "client.messages.create(body='Hi')", "client.messages.create({body: 'Hi'})",
        "FAQ", "Can I send to any country?", "Yes, to 180 countries.", "Prices are per message."]


def test_elements_side_by_side_whose_words_meet_are_two_words():
    """Tags as links side by side, a field's name and type as spans: their reader sees the words apart. A word
    that runs on in the text after an element (`<b>un</b>believable`), punctuation, and code in `<pre>` are left
    as they are."""
    page = ("<body><main><h1>Grand Theft Auto V</h1><div><a href='/t/1'>Action</a><a href='/t/2'>Open World</a>"
            "<a href='/t/3'>Co-op</a></div><h4><span><span>id</span></span><span>string</span></h4>"
            "<p>It is <b>un</b>believable, <em>truly</em>, and costs <span>$1</span><span>2</span>.</p>"
            "<pre><span>client</span><span>.</span><span>send</span>()</pre></main></body>")
    assert page_region.region_text(page).split("\n") == [
        "Grand Theft Auto V", "Action Open World Co-op", "id string", "It is unbelievable, truly, and costs $1 2.",
        "client.send()"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "span", "b", "p", "li", "em"]),
                          st.text(alphabet=st.sampled_from(list("ab1 .,-")), max_size=6),
                          st.text(alphabet=st.sampled_from(list("ab .")), max_size=3)), max_size=12))
def test_spacing_words_apart_only_adds_spaces(parts):
    """Whatever the elements, the spaces between words meeting at their edges are all the region adds."""
    page = "<body><main>" + "".join(f"<{tag}>{text}</{tag}>{tail}" for tag, text, tail in parts) + "</main></body>"
    spaced = page_region.region_text(page)
    original = page_region._space_words
    page_region._space_words = lambda root: None
    try:
        plain = page_region.region_text(page)
    finally:
        page_region._space_words = original
    assert spaced.replace(" ", "") == plain.replace(" ", "")
    assert len(spaced.split()) >= len(plain.split())


def test_blocks_hidden_by_their_class_are_not_read():
    """Screen-reader-only text and blocks that CSS utility classes hide are not shown, so not read; a block
    hidden on small screens and shown from some width on is (a desktop reader sees it), as is one whose class
    only resembles a hiding one."""
    page = ("<body><main><h1>Kettle</h1><p>Boils a litre in two minutes.</p>"
            "<span class='sr-only'>Opens in a new window</span><div class='visually-hidden'>Skip</div>"
            "<div class='Hidden'>Shown: the class is not the utility's</div>"
            "<div class='modal d-none'>Sign up for our newsletter</div><div class='hidden md:block'>Spare lids</div>"
            "<div class='d-none d-lg-flex'>Warranty two years</div><div class='hidden-xs'>Made in Germany</div>"
            "<p class='screen-reader-text'>Share on social media</p><ul class='x hide'><li>Menu</li></ul>"
            "<div class='offscreen'>Skip to content</div></main></body>")
    assert page_region.region_text(page).split("\n") == [
        "Kettle", "Boils a litre in two minutes.", "Shown: the class is not the utility's", "Spare lids",
        "Warranty two years", "Made in Germany"]


def test_screen_reader_only_text_under_a_sites_own_class_is_not_read():
    """Sites name their screen-reader-only utilities their own way; what they hold is read aloud, not shown.
    A product grid's hidden "Add ... to your Loves" and star-rating sentences repeat every item's name (WCXB
    dev's lulus.com page: region F1 0.64 -> 0.91). A class word about a label hides the label, not the block
    it is on, and Tailwind's `not-sr-only` shows a block again."""
    page = ("<body><main><h1>Dresses</h1>"
            "<div class='tile'><button><span class='u-text-sr-only'>Add Blue Midi Dress to your Loves.</span></button>"
            "<h2>Blue Midi Dress</h2><span class='a-offscreen'>$79.00</span><span>$79</span>"
            "<div aria-hidden='true'><span class='u-srOnly'>Rated 4.2 of 5 stars</span></div></div>"
            "<p class='visually-hidden--inline'>Opens in a new tab</p><div class='element-invisible'>Breadcrumb</div>"
            "<div class='field--label-visually_hidden'><div class='visually-hidden'>Body</div>"
            "<p>Light cotton for warm days.</p></div>"
            "<p class='not-sr-only'>Free returns within 30 days.</p></main></body>")
    assert page_region.region_text(page).split("\n") == [
        "Dresses", "Blue Midi Dress", "$79", "Light cotton for warm days.", "Free returns within 30 days."]


_HIDING_WORDS = ("sr-only", "visually-hidden", "visuallyhidden", "screen-reader-text", "a11y-hidden", "offscreen",
                 "d-none", "hidden", "is-hidden", "u-hidden", "hide", "u-text-sr-only", "u-srOnly", "a-offscreen",
                 "visually-hidden--inline", "element-invisible", "slds-assistive-text", "js-screen-reader-info")
_SHOWING_WORDS = ("d-md-block", "d-lg-flex", "d-sm-inline-block", "md:block", "lg:flex", "2xl:grid", "sm:table")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_HIDING_WORDS + _SHOWING_WORDS + (
    "card", "hidden-xs", "d-md-none", "md:hidden", "show", "Hidden", "only", "none", "screen", "hider", "shide",
    "d-none-x", "lg:text-lg", "not-sr-only", "md:not-sr-only", "field--label-visually_hidden", "overflow-hidden",
    "offscreen-menu", "invisible", "reader")), max_size=5), st.sampled_from([" ", "  ", "\t", "\n"]))
def test_a_class_hides_a_block_by_its_words(words, space):
    """The class test reads whole words: a block is hidden where one of its class words hides it (a framework's
    utility, or a screen-reader-only one under a site's own name) and none shows it again from some width on (the
    substring tests before the patterns miss none of them)."""
    el = etree.Element("div", {"class": space.join(words)})
    assert page_region._hidden_by_class(el) == (bool(set(words) & set(_HIDING_WORDS))
                                       and not set(words) & set(_SHOWING_WORDS))


_POST = ("<body><main><article><h1>Repotting a fig</h1><p>Move it in spring, one pot size up.</p>"
         "<p>Water it well the week after, then let the soil dry between waterings.</p></article>%s</main></body>")
_COMMENTS = ("<div id='comments' class='comments-area'><h2>2 thoughts</h2><ol class='comment-list'>"
             "<li class='comment'><p>Mine dropped its leaves after repotting.</p></li>"
             "<li class='comment'><p>Thanks, this worked.</p></li></ol>"
             "<div id='respond'><h3>Leave a reply</h3></div></div>")


def test_readers_comments_under_a_page_are_not_read_unless_asked_for():
    """Readers' comments under an article are not the article: trafilatura's text leaves them out, and so does
    the region (WCXB dev's 82 article pages where it changes: region F1 +3.7 summed); `include_comments` keeps
    them in both."""
    page = _POST % _COMMENTS
    article = ["Repotting a fig", "Move it in spring, one pot size up.",
               "Water it well the week after, then let the soil dry between waterings."]
    assert page_region.region_text(page).split("\n") == article
    assert page_region.region_text(page, comments=True).split("\n") == article + [
        "2 thoughts", "Mine dropped its leaves after repotting.", "Thanks, this worked.", "Leave a reply"]
    comment = "Mine dropped its leaves after repotting."
    assert comment in extract_html(page, None, HtmlSettings(include_comments=True))["text"]
    assert "leaves" not in extract_html(page, None, HtmlSettings())["text"]


def test_a_threads_comments_are_its_posts():
    """A forum thread's posts sit in comment blocks too (Invision Community's `<div id="comments">`): a page that
    declares itself a discussion (schema.org `DiscussionForumPosting`, in JSON-LD or microdata) keeps them, and
    so does a page whose comment block holds most of its text (a thread the page is about)."""
    declared = ("<head><script type='application/ld+json'>{\"@type\": \"DiscussionForumPosting\"}</script></head>"
                + _POST % _COMMENTS)
    assert "Thanks, this worked." in page_region.region_text(declared)
    microdata = (_POST % _COMMENTS).replace("<main>", "<main itemscope itemtype='https://schema.org/"
                                            "DiscussionForumPosting'>")
    assert "Thanks, this worked." in page_region.region_text(microdata)
    thread = ("<body><main><h1>Which pot?</h1><div class='comments'>"
              + "".join(f"<div class='comment'><p>Reply {i}: a clay pot breathes, a plastic one keeps water longer."
                        "</p></div>" for i in range(6)) + "</div></main></body>")
    assert page_region.region_text(thread).count("Reply") == 6


_SECTION_WORDS = ("comments", "Comments", "comment-list", "commentlist", "comments-area", "comment_section",
                  "comments-wrapper", "comment-threads", "disqus_thread", "respond", "comment-respond")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_SECTION_WORDS + ("comment", "comment-body", "comment-meta", "commentary", "nocomments",
                                         "comment-count", "responder", "responsive", "post")),
       st.sampled_from(["class", "id"]), st.booleans())
def test_a_comment_block_is_named_by_a_whole_word(word, attribute, nested):
    """A block is a comment block by a whole class word or its id (a single comment's `comment`, a count or a
    "commentary" section are not), and only the outermost one counts: the article around it is always read."""
    inner = "<p>Thanks, this worked.</p>"
    block = f"<div {attribute}='x {word}'>" + (f"<div class='comments'>{inner}</div>" if nested else inner) + "</div>"
    text = page_region.region_text(_POST % block)
    assert text.startswith("Repotting a fig\n")
    assert ("Thanks, this worked." in text) == (word not in _SECTION_WORDS and not nested)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/ preodcsiptxa\n\r")), max_size=200))
def test_unwrapping_changes_only_line_breaks(html):
    unwrapped = unwrap_lines(html)
    assert "".join(unwrapped.split()) == "".join(html.split())
    assert len(unwrapped) <= len(html)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/ =\"'abhimnp1\n&;!-")) | st.characters(), max_size=300))
def test_region_never_raises(html):
    text = page_region.region_text(html)
    assert isinstance(text, str) and not re.search("[\ue000-\ue003\ue010-\ue014]", text)
    assert text == "\n".join(line.text for line in page_region.html_lines(html))


def test_settings_turn_the_router_off_and_the_extractor_column_says_so():
    assert extractor_version(HtmlSettings()).endswith(" + region 11 + router 12")
    assert " + region" not in extractor_version(TRAFILATURA_ALONE)
    off = extract_html(PAGE, None, TRAFILATURA_ALONE)
    assert not {"html_text", "page_type", "extract_confidence"} & set(off)
    on = extract_html(PAGE, None, HtmlSettings())
    assert on["html_text"] in ("trafilatura", "region", "filtered") and 0.0 <= on["extract_confidence"] <= 1.0


def test_a_region_ratio_from_an_older_config_is_one_clear_error(tmp_path):
    raw = {"sources": [{"name": "w", "format": "html", "paths": ["*.html"]}], "output": "out",
           "extract": {"html": {"region_ratio_other": 0.6}}}
    with pytest.raises(ConfigError, match="extract.html.region_ratio_other: unknown key"):
        parse_config(raw, str(tmp_path))


def test_one_parse_gives_trafilaturas_own_tree():
    """extract_html parses each page once (html._parse, with lxml's C class lookup) and hands the tree to
    trafilatura, the region and the metadata: the tree is the one trafilatura's load_html would build, with what
    follows `</html>` moved into the body (html.after_end), notices for browsers without scripts taken out
    (html.without_script_notices) and streamed content in its placeholders' places (html.streamed_in;
    tests/test_html_parse.py)."""
    from lxml import etree
    from trafilatura.utils import load_html

    from pipelines.extract.html import _parse, after_end, streamed_in, without_script_notices

    pages = [gzip.open(p).read() for p in sorted((MODERN / "html").glob("*.html.gz"))[:20]]
    pages += [gzip.open(p).read() for p in sorted((Path(__file__).parent / "data" / "wcxb").rglob("*.html.gz"))[:20]]
    assert len(pages) == 40
    for raw in pages:
        html = unwrap_lines(decode_html(raw)[0])
        built = streamed_in(without_script_notices(after_end(load_html(html))))
        assert etree.tostring(_parse(html)) == etree.tostring(built)
    for bad in ("", "<p>only a fragment</p>", "\x00\x01\x02"):
        assert _parse(bad) is None and load_html(bad) is None
    xml_declared = "<?xml version='1.0' encoding='utf-8'?><html><body><p>declared</p></body></html>"
    assert etree.tostring(_parse(xml_declared)) == etree.tostring(load_html(xml_declared))
