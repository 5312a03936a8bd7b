"""The classify stage: fastText quality scores (`scores.quality_<name>`), the `domain` column, and thresholds.

Scores are computed by the worker that stages a unit, for every row that passed the filters, and staged with
it: a threshold can be moved later without scoring again. A threshold is a score, or a keep fraction
calibrated on this run's own scores (recorded in stats.json under `classifiers`). The decisions read only the
staged `scores` column.
"""
from __future__ import annotations

from typing import Any, Iterator

import apache_beam as beam

from classifiers.fasttext_model import Classifier

from pipelines.config.curate import ClassifierSettings, QualityModel
from pipelines.runtime.decisions import Decision, Decisions
from pipelines.schema import Row, scores_of
from pipelines.runtime.staging import read_staged

QUANTILES = 1000


def score_name(model: QualityModel) -> str:
    return f"quality_{model.name}"


class Scorer:
    """Batched prediction in a staging worker; each model is loaded once per worker."""

    def __init__(self, settings: ClassifierSettings) -> None:
        self.settings = settings
        self.models = [(m, Classifier(m.path)) for m in settings.models]
        self.domain = Classifier(settings.domain.path) if settings.domain else None

    def __call__(self, rows: list[Row]) -> None:
        for m, clf in self.models:
            targets = [d for d in rows if not m.sources or d["source"] in m.sources]
            if targets:
                for doc, probs in zip(targets, clf.predict([d["text"] for d in targets])):
                    doc["scores"] = dict(doc.get("scores") or {}, **{score_name(m): probs.get(m.label, 0.0)})
        if self.domain is not None and rows:
            for doc, probs in zip(rows, self.domain.predict([d["text"] for d in rows])):
                label = max(probs, key=probs.get)
                doc["scores"] = dict(doc.get("scores") or {}, domain=probs[label])
                doc["domain"] = label if probs[label] >= self.settings.domain.min_score else None


def _threshold_for(qs: list[float], keep_fraction: float) -> float:
    return float(qs[min(len(qs) - 1, max(0, round((1.0 - keep_fraction) * QUANTILES)))])


def _passed_scores(folder: str) -> Iterator[dict[str, float]]:
    """The scores of a unit's rows that passed the filters."""
    table = read_staged(folder, ["reason", "scores"])
    for reason, scores in zip(table.column("reason").to_pylist(), table.column("scores").to_pylist()):
        if reason is None:
            yield scores_of(scores)


class Classify(beam.PTransform):
    """(index, decisions) of every unit in, the same with classifier rejections added; also "thresholds": one
    dict {score name: threshold}."""

    def __init__(self, settings: ClassifierSettings, folders: list[str]) -> None:
        super().__init__()
        self.settings, self.folders = settings, folders

    def expand(self, decided: Any) -> Any:
        settings, folders = self.settings, self.folders
        p = decided.pipeline
        parts = []
        for m in settings.models:
            name = score_name(m)
            if m.threshold is not None:
                t = p | f"Fixed_{m.name}" >> beam.Create([(name, m.threshold)])
            else:
                t = (decided
                     | f"Scores_{m.name}" >> beam.FlatMap(
                         lambda kv, n=name: [s[n] for s in _passed_scores(folders[kv[0]]) if n in s])
                     | f"Quantiles_{m.name}" >> beam.ApproximateQuantiles.Globally(QUANTILES + 1)
                     | f"Calibrate_{m.name}" >> beam.Map(
                         lambda qs, n=name, kf=m.keep_fraction: (n, _threshold_for(qs, kf) if qs else 0.0)))
            parts.append(t)
        thresholds = (parts | "AllThresholds" >> beam.Flatten()) if parts else (p | "NoThresholds" >> beam.Create([]))

        def decide(item: tuple[int, list[Decision]], limits: dict[str, float]) -> tuple[int, list[Decision]]:
            index, decisions = item
            table = read_staged(folders[index], ["reason", "scores"])
            out = Decisions(decisions)
            rows = table.column("row").to_pylist()
            for row, reason, scores in zip(rows, table.column("reason").to_pylist(), table.column("scores").to_pylist()):
                if reason is not None:
                    continue
                scores = scores_of(scores)
                for m in settings.models:
                    name = score_name(m)
                    score = scores.get(name)
                    if score is not None and score < limits[name]:
                        out.append(Decision(row, f"classify:{name}",
                                            f"{name}={score:.4f} < threshold {limits[name]:.4f}", None, None))
                        break
            return index, out

        decided = decided | "Decide" >> beam.Map(decide, beam.pvalue.AsDict(thresholds))
        summary = thresholds | "ThresholdDict" >> beam.combiners.ToDict()
        return {"decided": decided, "thresholds": summary}

