"""Every language the corpus holds: words per language, per-language thresholds and LID thresholds, rule values,
per-language stats, and near-duplicates in scripts written without spaces. Real text: sections of the Debian
Reference in six languages (tests/data/languages, GPL-2+, see NOTICE)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from pipelines.config.curate import parse_config
from pipelines.dedup.minhash import jaccard, shingle_hashes
from pipelines.extract.html import extract_html
from pipelines.filter.rules import RULES, RULES_BY_NAME, Doc, fails, measure
from pipelines.lang import words as lang_words
from pipelines.lang.stopwords import GOPHER, stop_words
from pipelines.lang.table import lid_min_score, row_name, rule_thresholds, table
from pipelines.lang.words import cut, segmenter_name, units
from pipelines.runtime import stages
from pipelines.schema import new_doc, reject, scores_of

from conftest import curate, read_rows

LANG_DATA = Path(__file__).parent / "data" / "languages"
LANGS = ("en", "de", "fr", "es", "ja", "zh")


def section_text(lang: str, name: str) -> str:
    from pipelines.config.extract import HtmlSettings

    return extract_html((LANG_DATA / lang / name).read_text(encoding="utf-8"), None, HtmlSettings())["text"]


def test_segmenters_cut_words_where_there_are_no_spaces():
    zh = cut("我们在北京大学学习自然语言处理。", "zh")
    assert "北京大学" in zh.words and "。" not in zh.words
    ja = cut("日本語の文章を単語に分割します。", "ja")
    assert "文章" in ja.words and "の" in ja.tokens
    th = cut("ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", "th")
    assert 3 < len(th.words) < 20
    assert cut("Hello, world. Two words!", "en").words == ["Hello,", "world.", "Two", "words!"]
    assert {segmenter_name(x) for x in ("zh", "ja", "th", "de", "km")} == {"rjieba", "fugashi", "pythainlp",
                                                                          "spaces", "chars"}


def test_a_missing_segmenter_falls_back_to_characters_with_its_own_table_row(monkeypatch):
    monkeypatch.setattr(lang_words, "_segmenter", lambda lang: None)
    assert segmenter_name("zh") == "chars"
    assert cut("我们学习。", "zh").words == ["我", "们", "学", "习"]
    assert row_name("zh") == "zh/chars" and row_name("km") == "*/chars"
    assert lang_words.missing_segmenters(["zh", "de", "ja"]) == {"ja": "fugashi unidic-lite", "zh": "rjieba"}
    assert rule_thresholds("zh") == table()["zh/chars"]["rules"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 1,.\n我们学习日本語のテキストไทยกขщд")), max_size=80),
       st.sampled_from([None, "en", "zh", "ja", "th", "ru", "km"]))
def test_words_and_units_cover_every_word_character(text, lang):
    # units lose no word character and cross no space; the words of any language hold only the text's characters
    assert "".join(units(text)) == "".join(c for c in text if c.isalnum() or c == "_")
    cut_ = cut(text, lang)
    if segmenter_name(lang) != "spaces":  # segmented or per character: tokens are the words, lower-cased
        assert cut_.tokens == [w.lower() for w in cut_.words]
    for w in cut_.words:
        assert w and all(c in text for c in w)


def test_stop_words_are_each_languages_own():
    assert stop_words("en") == GOPHER
    assert {"und", "der", "die"} <= stop_words("de") and "the" not in stop_words("de")
    assert "的" in stop_words("zh") and stop_words("xx") == frozenset()
    de = section_text("de", sorted(p.name for p in (LANG_DATA / "de").iterdir())[2])
    values, _ = measure(Doc(de, "de"), {"gopher_stop_words": 2})
    assert values["gopher_stop_words"] > 20  # German function words, counted in German
    assert measure(Doc(de, "en"), {"gopher_stop_words": 2})[0]["gopher_stop_words"] < 5
    # a language without a stop-word list has no stop-word rule, rather than failing on English words
    assert "gopher_stop_words" not in measure(Doc("வணக்கம் நண்பரே எப்படி இருக்கிறீர்கள்", "ta"),
                                                   {"gopher_stop_words": 2})[0]


def test_the_table_is_made_from_real_text_and_english_keeps_the_published_thresholds():
    rows = table()
    assert {r.name: r.default for r in RULES_BY_NAME.values()} == rows["en"]["rules"]
    for lang in ("de", "fr", "es", "pt", "it", "ja", "zh", "ru", "ko"):
        assert rows[lang]["pages"] >= 30 and 0.3 <= rows[lang]["lid_min_score"] <= 0.9
    # words are shorter in Chinese and Japanese, and German's stop words come from a longer list
    assert rows["zh"]["rules"]["gopher_max_mean_word_length"] < 6 < rows["de"]["rules"]["gopher_max_mean_word_length"]
    assert rows["de"]["rules"]["gopher_stop_words"] > 2
    assert lid_min_score("de") == rows["de"]["lid_min_score"] and lid_min_score("xx") == 0.3


def test_thresholds_apply_from_the_table_to_the_source_most_specific_last(tmp_path):
    raw = {"output": str(tmp_path / "out"), "sources": [{"name": "web", "format": "jsonl", "paths": ["x.jsonl"]}],
           "filters": {"language": {"min_score": "table"}, "rules": {"gopher_min_words": 10},
                       "languages": {"de": {"rules": {"gopher_min_words": 20, "gopher_stop_words": False},
                                            "min_score": 0.5}},
                       "sources": {"web": {"gopher_max_words": 500}}}}
    (tmp_path / "x.jsonl").write_text("")
    f = parse_config(raw, str(tmp_path)).filters
    de, ja = f.thresholds("web", "de"), f.thresholds("web", "ja")
    assert de["gopher_min_words"] == 20 and "gopher_stop_words" not in de and de["gopher_max_words"] == 500
    assert ja["gopher_min_words"] == 10
    assert ja["gopher_max_mean_word_length"] == table()["ja"]["rules"]["gopher_max_mean_word_length"]
    assert f.min_score("de") == 0.5 and f.min_score("ja") == table()["ja"]["lid_min_score"]
    raw["filters"] = {"table": False, "language": {"min_score": 0.1}}
    f = parse_config(raw, str(tmp_path)).filters
    assert f.thresholds("web", "ja")["gopher_max_mean_word_length"] == 10 and f.min_score("ja") == 0.1
    raw["filters"] = {}
    assert parse_config(raw, str(tmp_path)).filters.min_score("ja") == 0.0  # by default, no LID threshold


class _Upper:
    stage, name = "filter", "upper"

    def __call__(self, row):
        row["text"] = row["text"].upper()
        return row


class _Short:
    stage, name = "filter", "short"

    def __call__(self, row):
        return reject(row, "filter:short", "too short") if len(row["text"]) < 5 else row


class _Wrong:
    stage, name = "filter", "wrong"

    def __call__(self, row):
        return reject(row, "dedup:exact", "not a filter reason")


def test_stages_run_in_order_stop_at_the_first_rejection_and_check_reasons():
    doc = new_doc(source="s", source_uri="u", locator="l", fmt="text", text="abc")
    out = stages.run(dict(doc), [_Upper(), _Short(), _Wrong()])
    assert out["reason"] == "filter:short" and out["text"] == "ABC"
    assert stages.run(dict(doc, text="abcdef"), [_Upper(), _Short()])["text"] == "ABCDEF"
    with pytest.raises(stages.StageError, match="wrong"):
        stages.run(dict(doc, text="abcdef"), [_Short(), _Wrong()])


def _config(tmp_path: Path, inputs: Path) -> dict:
    return {"output": str(tmp_path / "out"), "filters": {"language": {"report_min_docs": 5}},
            "sources": [{"name": lang, "format": "html", "paths": [str(inputs / lang / "*.html")]} for lang in LANGS]}


@pytest.fixture(scope="module")
def translated(tmp_path_factory) -> Path:
    """A curate run with the default config on the same sections in six languages, plus a near-copy of every
    section in Japanese and Chinese (a few characters changed, the last paragraph dropped)."""
    base = tmp_path_factory.mktemp("languages")
    inputs = base / "in"
    for lang in LANGS:
        (inputs / lang).mkdir(parents=True)
        for page in sorted((LANG_DATA / lang).iterdir()):
            if page.suffix == ".html":
                (inputs / lang / page.name).write_bytes(page.read_bytes())
    for lang in ("ja", "zh"):
        for page in sorted((LANG_DATA / lang).glob("*.html")):
            tree = lxml_html.fromstring(page.read_text(encoding="utf-8"))
            paragraphs = tree.xpath("//p")
            paragraphs[-1].getparent().remove(paragraphs[-1])
            for p in paragraphs[:3]:
                if p.text and len(p.text) > 10:
                    p.text = p.text[:5] + "字" + p.text[6:]
            (inputs / lang / f"{page.stem}.copy.html").write_text(lxml_html.tostring(tree, encoding="unicode"),
                                                                  encoding="utf-8")
    curate(base, _config(base, inputs), workers=2)
    return base / "out"


def test_translations_are_kept_about_as_often_as_english(translated):
    rows = read_rows(translated, "kept") + read_rows(translated, "rejected")
    originals = [r for r in rows if not r["source_uri"].endswith(".copy.html")]
    kept = Counter(r["source"] for r in originals if r.get("reason") is None)
    total = Counter(r["source"] for r in originals)
    share = {lang: kept[lang] / total[lang] for lang in LANGS}
    assert share["en"] >= 0.2, share
    for lang in LANGS:
        assert share[lang] >= 0.8 * share["en"], share
    langs = Counter(r["lang"] for r in originals if r["source"] == r["lang"] or (r["source"], r["lang"]) == ("zh", "zh"))
    # most sections are identified as their own language (a section that is mostly commands reads as English)
    assert all(langs[lang] >= 0.75 * total[lang] for lang in LANGS), langs


def test_rule_values_let_a_threshold_move_without_extracting_again(translated):
    rows = read_rows(translated, "kept") + read_rows(translated, "rejected")
    f = parse_config({"output": "/tmp/none", "sources": [{"name": "x", "format": "text", "paths": [__file__]}]},
                     "/").filters
    measured = [r for r in rows if r["rule_values"]]
    assert len(measured) > len(rows) // 2
    for r in measured:
        values = scores_of(r["rule_values"])
        limits = f.thresholds(r["source"], r["lang"])
        failing = [rule.name for rule in RULES if rule.name in values  # in the order the rules run
                   and fails(rule, values[rule.name], limits[rule.name])]
        reason = r.get("reason")
        if reason is None or not reason.startswith("filter:"):
            assert failing == [], (r["source_uri"], failing)  # kept, or rejected later: every rule passed
        else:
            assert reason == f"filter:{failing[0]}"  # the first failing rule is the reason, and it was measured
        # moving one threshold is a look-up in the stored values: no text needed
        assert set(values) <= set(limits)


def test_near_copies_are_found_in_scripts_without_spaces(translated):
    rows = read_rows(translated, "kept") + read_rows(translated, "rejected")
    by_uri = {(r["source"], Path(r["source_uri"]).name): r for r in rows}
    pairs = 0
    for (source, name), copy in by_uri.items():
        if not name.endswith(".copy.html"):
            continue
        original = by_uri[source, name.replace(".copy.html", ".html")]
        similar = jaccard(shingle_hashes(original["text"], 5), shingle_hashes(copy["text"], 5)) >= 0.85
        if similar and {original.get("reason"), copy.get("reason")} <= {None, "dedup:minhash"}:
            pairs += 1
            assert original["dup_cluster_id"] and original["dup_cluster_id"] == copy["dup_cluster_id"], name
            assert "dedup:minhash" in {original.get("reason"), copy.get("reason")}
    assert pairs >= 3


def test_stats_and_data_card_count_every_language(translated):
    stats = json.loads((translated / "stats.json").read_text())
    rows = read_rows(translated, "kept") + read_rows(translated, "rejected")
    langs = stats["languages"]
    assert sum(v["read"] for v in langs.values()) == len(rows) == stats["totals"]["read"]
    for lang, v in langs.items():
        assert v["kept"] + v["rejected"] == v["read"]
        assert sum(v["rejected_by_reason"].values()) == v["rejected"]
        if lang not in ("other", "unknown"):
            assert v["read"] == sum(1 for r in rows if r["lang"] == lang)
    assert stats["segmenters"]["zh"] == "rjieba" and stats["segmenters"]["ja"] == "fugashi"
    card = (translated / "data_card.md").read_text()
    assert "## Languages" in card and "| zh |" in card and "rjieba" in card
