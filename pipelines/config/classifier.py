"""The classifier job's config (`refinery classifier train`): labelled text, and fastText's settings."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from classifiers.fasttext_model import TrainParams
from pipelines.runtime import storage
from pipelines.config.inputs import match_files
from pipelines.config.base import Items, Job, KeyedError, Section, Strings, check_name, load_yaml, resolve, validate


class LabelData(Section):
    """Text of one label: files (txt, JSONL, Parquet) or a curate output's kept documents."""

    paths: Strings | None = Field(None, description="globs of text files, relative to the config file")
    text_field: str = "text"
    pool: str | None = Field(None, description="a curate output folder")
    sources: Strings | None = Field(None, description="with pool: only these sources")
    sample: int | None = Field(None, ge=1, description="with pool: at most this many documents")

    @field_validator("paths")
    @classmethod
    def _files(cls, patterns: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        if patterns is None:
            return None
        files: list[str] = []
        for j, pattern in enumerate(patterns):
            matched = match_files(resolve(pattern, info), follow_symlinks=True)
            if not matched:
                raise KeyedError(str(j), f"{pattern!r} matches no file")
            files.extend(matched)
        return tuple(files)

    @field_validator("pool")
    @classmethod
    def _pool(cls, pool: str | None, info: ValidationInfo) -> str | None:
        if pool is None:
            return None
        full = resolve(pool, info)
        if not [n for n in storage.listdir(storage.join(full, "kept")) if n.endswith(".parquet")]:
            raise ValueError(f"no curated shards in {pool}/kept")
        return full

    @model_validator(mode="after")
    def _one_kind(self) -> LabelData:
        if (self.paths is None) == (self.pool is None):
            raise ValueError("expected exactly one of paths, pool")
        return self


class ClassifierTrainConfig(Job):
    """`refinery classifier train`: a fastText quality (two labels) or domain (several) classifier."""

    name: str
    output: str = Field(description="the model file to write; its card goes beside it")
    positive: str | None = Field(None, description="the label whose probability is the quality score")
    labels: dict[str, Annotated[Items[LabelData], Field(min_length=1)]]
    params: TrainParams = TrainParams()
    chunk_words: int = Field(0, ge=0, description="split long documents into pieces of this many words (0: off)")

    @field_validator("labels")
    @classmethod
    def _two_labels(cls, labels: dict) -> dict:
        if len(labels) < 2:
            raise ValueError("expected a mapping of at least two labels to their data")
        for label in labels:
            try:
                check_name(label)
            except ValueError as exc:
                raise KeyedError(label, str(exc)) from None
        return labels

    @field_validator("output")
    @classmethod
    def _resolve(cls, output: str, info: ValidationInfo) -> str:
        return resolve(output, info)

    @model_validator(mode="after")
    def _positive_is_a_label(self) -> ClassifierTrainConfig:
        if self.positive is not None and self.positive not in self.labels:
            raise KeyedError("positive", f"{self.positive!r} is not one of the labels {sorted(self.labels)}")
        return self


def parse_classifier_config(raw: Any, base: str) -> ClassifierTrainConfig:
    return validate(ClassifierTrainConfig, raw, base)


def load_classifier_config(path: str) -> ClassifierTrainConfig:
    return parse_classifier_config(*load_yaml(path))
