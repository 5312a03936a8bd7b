"""The run job's config (`refinery run`): the configs of curate, classifier train, mix and shards, run in turn."""
from __future__ import annotations

import os

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipelines.config.base import Job, resolve


class RunConfig(Job):
    """`refinery run`: each key names another job's config file, relative to this one."""

    curate: str | None = Field(None, description="a curate config")
    classifier: str | None = Field(None, description="a classifier config, trained after curate")
    mix: str | None = Field(None, description="a mix config")
    shards: str | None = Field(None, description="a shards config")

    @field_validator("curate", "classifier", "mix", "shards")
    @classmethod
    def _exists(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None:
            return None
        full = resolve(path, info)
        if not os.path.isfile(full):
            raise ValueError(f"file not found: {path}")
        return full

    @model_validator(mode="after")
    def _some_step(self) -> RunConfig:
        if not self.steps():
            raise ValueError("expected at least one of curate, classifier, mix, shards")
        return self

    def steps(self) -> list[tuple[str, str]]:
        """(job, config path) in the order they run."""
        return [(k, getattr(self, k)) for k in ("curate", "classifier", "mix", "shards") if getattr(self, k)]
