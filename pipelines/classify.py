"""The classify stage: fastText quality scores (`scores.quality_<name>`), the `domain` column, and thresholds.

Scores are written for every document that reaches the stage, rejected ones included, so a threshold can be
moved later without scoring again. A threshold is a score, or a keep fraction calibrated on this run's own
scores (recorded in stats.json under `classifiers`).
"""
from __future__ import annotations

from typing import Any, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from classifiers.fasttext_model import Classifier

from .config.curate import ClassifierSettings, QualityModel
from .schema import reject

Row = dict[str, Any]
REJECTED = "rejected"
QUANTILES = 1000


def score_name(model: QualityModel) -> str:
    return f"quality_{model.name}"


class _Score(beam.DoFn):
    """Batched prediction; each model is loaded once per worker."""

    def __init__(self, settings: ClassifierSettings) -> None:
        self.settings = settings

    def setup(self) -> None:
        self.models = [(m, Classifier(m.path)) for m in self.settings.models]
        self.domain = Classifier(self.settings.domain.path) if self.settings.domain else None

    def process(self, batch: list[Row]) -> Iterator[Row]:
        for m, clf in self.models:
            targets = [d for d in batch if not m.sources or d["source"] in m.sources]
            if targets:
                for doc, probs in zip(targets, clf.predict([d["text"] for d in targets])):
                    doc["scores"] = dict(doc.get("scores") or {}, **{score_name(m): probs.get(m.label, 0.0)})
        if self.domain is not None:
            for doc, probs in zip(batch, self.domain.predict([d["text"] for d in batch])):
                label = max(probs, key=probs.get)
                doc["scores"] = dict(doc.get("scores") or {}, domain=probs[label])
                doc["domain"] = label if probs[label] >= self.settings.domain.min_score else None
        yield from batch


def _threshold_for(qs: list[float], keep_fraction: float) -> float:
    return float(qs[min(len(qs) - 1, max(0, round((1.0 - keep_fraction) * QUANTILES)))])


class Classify(beam.PTransform):
    """Returns {"kept", "rejected", "thresholds"}; thresholds is one dict {score name: threshold}."""

    def __init__(self, settings: ClassifierSettings) -> None:
        super().__init__()
        self.settings = settings

    def expand(self, docs: Any) -> Any:
        settings = self.settings
        scored = (docs
                  | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=256)
                  | "Score" >> beam.ParDo(_Score(settings)))
        parts = []
        for m in settings.models:
            name = score_name(m)
            if m.threshold is not None:
                t = scored.pipeline | f"Fixed_{m.name}" >> beam.Create([(name, m.threshold)])
            else:
                t = (scored
                     | f"Scores_{m.name}" >> beam.FlatMap(lambda d, n=name: [d["scores"][n]] if n in (d["scores"] or {}) else [])
                     | f"Quantiles_{m.name}" >> beam.ApproximateQuantiles.Globally(QUANTILES + 1)
                     | f"Calibrate_{m.name}" >> beam.Map(
                         lambda qs, n=name, kf=m.keep_fraction: (n, _threshold_for(qs, kf) if qs else 0.0)))
            parts.append(t)
        thresholds = (parts | "AllThresholds" >> beam.Flatten()) if parts else (
            scored.pipeline | "NoThresholds" >> beam.Create([]))

        def decide(doc: Row, limits: dict[str, float]) -> Any:
            for m in settings.models:
                name = score_name(m)
                score = (doc["scores"] or {}).get(name)
                if score is not None and score < limits[name]:
                    Metrics.counter("refinery", f"{doc['source']}/classify:{name}").inc()
                    return beam.pvalue.TaggedOutput(REJECTED, reject(
                        doc, f"classify:{name}", f"{name}={score:.4f} < threshold {limits[name]:.4f}"))
            return doc

        decided = scored | "Decide" >> beam.Map(decide, beam.pvalue.AsDict(thresholds)).with_outputs(REJECTED, main="kept")
        summary = thresholds | "ThresholdDict" >> beam.combiners.ToDict()
        return {"kept": decided.kept, REJECTED: decided[REJECTED], "thresholds": summary}
