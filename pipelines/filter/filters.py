"""The filter stages: PII masking, language ID, the heuristic rules and decontamination, in that order.

Every rejection names its rule and the measured value: `filter:<rule>` or `decontam:ngram_overlap`. The rules
measure words in the document's language and use its thresholds (FilterSettings.thresholds); every enabled
rule's value is kept in `rule_values`, so thresholds can be moved later without extracting again.
"""
from __future__ import annotations

from typing import Any

from classifiers.langid import identify

from pipelines.config.curate import CurateConfig, DecontamSettings, FilterSettings, PiiSettings
from pipelines.extract.extract import annotate
from pipelines.filter.decontam import build_index, find_overlap
from pipelines.filter.pii import mask_pii
from pipelines.filter.rules import C4_LINE_FILTER, RULES_BY_NAME, Doc, c4_clean, measure
from pipelines.lang.words import count_words
from pipelines.runtime.stages import Stage
from pipelines.schema import Row, reject


class MaskPii:
    stage, name = "filter", "pii"

    def __init__(self, settings: PiiSettings) -> None:
        self.settings = settings

    def __call__(self, doc: Row) -> Row:
        s = self.settings
        text, counts = mask_pii(doc["text"], s.email, s.ip, s.phone)
        if any(counts.values()):
            doc["text"] = text
            doc["metadata"]["pii"] = {k: v for k, v in counts.items() if v}
            annotate(doc)
        return doc


class LanguageId:
    """Sets `lang`, `lang_score` and `n_words` (words in that language); rejects languages not kept and
    identifications below the language's confidence threshold."""

    stage, name = "filter", "language"

    def __init__(self, settings: FilterSettings) -> None:
        self.settings = settings

    def __call__(self, doc: Row) -> Row:
        f = self.settings
        lang, score = identify(doc["text"], f.language.engine)
        doc["lang"], doc["lang_score"] = lang, score
        doc["n_words"] = count_words(doc["text"], lang)
        if not f.enabled:
            return doc
        if f.language.keep and lang not in f.language.keep:
            return reject(doc, "filter:language", f"lang={lang} ({score:.3f}) not in {list(f.language.keep)}")
        need = f.min_score(lang)
        if score < need:
            return reject(doc, "filter:lang_score", f"lang_score={score:.3f} < {need:g} (for {lang})")
        return doc


class QualityRules:
    """The heuristic rules with the thresholds of the document's source and language."""

    stage, name = "filter", "rules"

    def __init__(self, settings: FilterSettings) -> None:
        self.settings = settings
        self.cache: dict[tuple[str, str | None], dict[str, Any]] = {}

    def thresholds(self, source: str, lang: str | None) -> dict[str, Any]:
        key = (source, lang)
        if key not in self.cache:
            self.cache[key] = self.settings.thresholds(source, lang)
        return self.cache[key]

    def __call__(self, doc: Row) -> Row:
        thresholds = dict(self.thresholds(doc["source"], doc["lang"]))
        if thresholds.pop(C4_LINE_FILTER, False):
            text, dropped = c4_clean(doc["text"])
            if dropped:
                doc["metadata"]["c4_lines_removed"] = dropped
                doc["text"] = text
                annotate(doc)
                doc["n_words"] = count_words(text, doc["lang"])
        values, failed = measure(Doc(doc["text"], doc["lang"]), thresholds)
        doc["rule_values"] = values
        if failed:
            name, value, limit = failed
            op = ">=" if RULES_BY_NAME[name].op == "min" else "<="
            return reject(doc, f"filter:{name}", f"{name}={value:.4g}, needs {op} {limit:g} (for {doc['lang']})")
        return doc


class Decontam:
    stage, name = "decontam", "decontam"

    def __init__(self, settings: DecontamSettings) -> None:
        self.settings = settings
        self.index = build_index(list(settings.paths), settings.ngram, settings.min_words)

    def __call__(self, doc: Row) -> Row:
        hit = find_overlap(doc["text"], self.index, self.settings.ngram)
        if hit:
            return reject(doc, "decontam:ngram_overlap", f"eval={hit[0]} span={hit[1]!r}")
        return doc


def filter_stages(cfg: CurateConfig) -> list[Stage]:
    """The filter stages a config turns on, in order (built once per worker: the decontamination index here)."""
    stages: list[Stage] = []
    if cfg.pii.enabled:
        stages.append(MaskPii(cfg.pii))
    stages.append(LanguageId(cfg.filters))
    if cfg.filters.enabled:
        stages.append(QualityRules(cfg.filters))
    if cfg.decontam.enabled:
        stages.append(Decontam(cfg.decontam))
    return stages
