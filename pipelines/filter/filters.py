"""The filter stage: PII masking, language ID, the heuristic rules and decontamination, in that order.

Every rejection names its rule and the measured value: `filter:<rule>` or `decontam:ngram_overlap`.
"""
from __future__ import annotations

from classifiers.langid import identify

from pipelines.config.curate import DecontamSettings, FilterSettings, PiiSettings
from pipelines.filter.decontam import build_index, find_overlap
from pipelines.extract.extract import annotate
from pipelines.filter.pii import mask_pii
from pipelines.filter.rules import C4_LINE_FILTER, RULES_BY_NAME, Doc, c4_clean, check
from pipelines.schema import Row, reject


class Filters:
    """Built once per worker (the decontamination index and per-source thresholds are computed here)."""

    def __init__(self, filters: FilterSettings, pii: PiiSettings, decontam: DecontamSettings,
                 sources: list[str]) -> None:
        self.settings, self.pii, self.decontam = filters, pii, decontam
        self.thresholds = {name: filters.thresholds(name) for name in sources}
        d = decontam
        self.index = build_index(list(d.paths), d.ngram, d.min_words) if d.enabled else {}

    def __call__(self, doc: Row) -> Row:
        pii = self.pii
        if pii.enabled:
            text, counts = mask_pii(doc["text"], pii.email, pii.ip, pii.phone)
            if any(counts.values()):
                doc["text"] = text
                doc["metadata"]["pii"] = {k: v for k, v in counts.items() if v}
                annotate(doc)
        f = self.settings
        lang, score = identify(doc["text"], f.language.engine)
        doc["lang"], doc["lang_score"] = lang, score
        if f.enabled:
            if f.language.keep and lang not in f.language.keep:
                return reject(doc, "filter:language", f"lang={lang} ({score:.3f}) not in {list(f.language.keep)}")
            if score < f.language.min_score:
                return reject(doc, "filter:lang_score", f"lang_score={score:.3f} < {f.language.min_score}")
            thresholds = dict(self.thresholds[doc["source"]])
            if thresholds.pop(C4_LINE_FILTER, False):
                text, dropped = c4_clean(doc["text"])
                if dropped:
                    doc["metadata"]["c4_lines_removed"] = dropped
                    doc["text"] = text
                    annotate(doc)
            failed = check(Doc(doc["text"]), thresholds)
            if failed:
                name, value, limit = failed
                op = ">=" if RULES_BY_NAME[name].op == "min" else "<="
                return reject(doc, f"filter:{name}", f"{name}={value:.4g}, needs {op} {limit:g}")
        if self.index:
            hit = find_overlap(doc["text"], self.index, self.decontam.ngram)
            if hit:
                return reject(doc, "decontam:ngram_overlap", f"eval={hit[0]} span={hit[1]!r}")
        return doc
