"""The shape of a per-document stage, and the one function that runs a document through them.

A stage is an object with `stage` (the first part of the reasons it gives, one of schema.STAGES), `name` (what
it is counted as) and a call that returns the row, changed or not, or the row rejected with `schema.reject`. A
new filter is one such class and one config section; `run` routes a row through the stages in order, stops at
the first rejection, checks that the reason belongs to the stage that gave it, and counts each stage's
rejections (the `<source>/rejected_by:<name>` counters).
"""
from __future__ import annotations

from typing import Protocol, Sequence

from apache_beam.metrics import Metrics

from pipelines.runtime.decisions import NAMESPACE
from pipelines.schema import Row, is_rejected


class Stage(Protocol):
    stage: str  # the stage part of its reasons: "<stage>:<rule>"
    name: str

    def __call__(self, row: Row) -> Row: ...


class StageError(RuntimeError):
    """A stage gave a reason of another stage (a refinery bug)."""


def run(row: Row, stages: Sequence[Stage]) -> Row:
    """The row after every stage, or the first stage's rejection of it."""
    for stage in stages:
        row = stage(row)
        if is_rejected(row):
            reason = row["reason"]
            if reason.split(":", 1)[0] != stage.stage:
                raise StageError(f"stage {stage.name!r} gave the reason {reason!r}, expected '{stage.stage}:...'")
            Metrics.counter(NAMESPACE, f"{row['source']}/rejected_by:{stage.name}").inc()
            return row
    return row
