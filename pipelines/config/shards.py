"""The shards job's config (`refinery shards`): the chosen mixture written as training shards."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipelines.runtime import storage
from pipelines.config.base import Items, Job, KeyedError, Section, Strings, load_yaml, resolve, validate


class ShardsTokenizer(Section):
    kind: Literal["bytes", "bpe"] = "bytes"
    path: str | None = Field(None, description="bpe: the tokenizer JSON that `refinery mix` wrote")

    @field_validator("path")
    @classmethod
    def _resolve(cls, path: str | None, info: ValidationInfo) -> str | None:
        return None if path is None else resolve(path, info)

    @model_validator(mode="after")
    def _bpe_file(self) -> ShardsTokenizer:
        if self.kind == "bpe" and self.path is None:
            raise KeyedError("path", "a bpe tokenizer needs the tokenizer JSON written by `refinery mix`")
        return self


class Profile(Section):
    """Which documents may go into the shards, by their license and consent labels."""

    allow_licenses: Strings | None = None
    deny_licenses: Strings | None = None
    allow_consent: Strings | None = None

    def as_dict(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.model_dump(exclude_none=True).items()}


class Rehydrate(Section):
    """Repeats from duplicate clusters: a survivor of deduplication stands for its cluster (FineWeb-2's
    rehydration). A document whose `dup_cluster_size` reaches a threshold of `copies` gets that many copies (the
    largest threshold reached), if its value is at least `min_value`; never more than `max_epochs`."""

    enabled: bool = False
    copies: dict[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: {1: 1, 2: 2, 5: 3, 100: 4}, description="cluster size at least -> copies")
    min_value: float = Field(0.0, description="documents valued below this keep one copy")


class ShardsConfig(Job):
    """`refinery shards`: a curated pool sampled by mixture weights into token files and Parquet shards.

    The weights come from a `mix` file (mix.yaml, which also gives budget_tokens, domain_column and the
    proxies' held-out fraction unless set here) or are given as `weights`."""

    pool: str
    output: str
    mix: str | None = Field(None, description="mix.yaml written by `refinery mix`")
    weights: dict[str, Annotated[float, Field(ge=0.0)]] | None = Field(None, description="domain -> weight")
    budget_tokens: float | None = Field(None, ge=1.0, description="required unless mix.yaml gives it")
    domain_column: str | None = Field(None, description="default: mix.yaml's, else source")
    max_epochs: float = Field(4.0, ge=1.0)
    seed: int = 0
    tokenizer: ShardsTokenizer = ShardsTokenizer()
    shard_tokens: int = Field(50_000_000, ge=1000)
    exclude_heldout_fraction: float | None = Field(None, ge=0.0, lt=1.0,
                                                   description="documents the proxies held out (default: mix.yaml's)")
    score: str | None = Field(None, description="the score that orders repeats; default: the highest quality_*")
    profile: Profile = Profile()
    formats: Annotated[Items[Literal["parquet", "tokens", "megatron"]], Field(min_length=1)] = Field(
        ("parquet", "tokens"), description="parquet rows, token files, Megatron-LM indexed dataset (.bin/.idx)")
    rehydrate: Rehydrate = Rehydrate()

    @field_validator("pool", "output", "mix")
    @classmethod
    def _resolve(cls, path: str | None, info: ValidationInfo) -> str | None:
        return None if path is None else resolve(path, info)

    @model_validator(mode="before")
    @classmethod
    def _from_mix_file(cls, raw: Any, info: ValidationInfo) -> Any:
        """Fill weights, budget_tokens, domain_column and the held-out fraction from mix.yaml, where given."""
        if not isinstance(raw, dict):
            return raw
        if ("weights" in raw) == ("mix" in raw):
            raise KeyedError("weights", "expected exactly one of mix (a mix.yaml) or weights")
        if "mix" not in raw or not isinstance(raw["mix"], str):
            return raw
        path = resolve(raw["mix"], info)
        if not storage.isfile(path):
            raise KeyedError("mix", f"file not found: {raw['mix']} (run `refinery mix` first, or give weights)")
        mix = yaml.safe_load(storage.read_bytes(path).decode("utf-8")) or {}
        if not isinstance(mix, dict):
            raise KeyedError("mix", f"{raw['mix']} is not a mix.yaml written by `refinery mix`")
        out = dict(raw)
        for key, mix_key in (("budget_tokens", "budget_tokens"), ("domain_column", "domain_column"),
                             ("exclude_heldout_fraction", "heldout_fraction")):
            if key not in out and mix.get(mix_key) is not None:
                out[key] = mix[mix_key]
        out["weights"] = mix.get("weights")  # checked as if given here
        return out

    @model_validator(mode="after")
    def _complete(self) -> ShardsConfig:
        weights = self.weights
        if not weights:
            raise KeyedError("weights", "expected a mapping of domain to weight")
        total = float(sum(weights.values()))
        if total <= 0:
            raise KeyedError("weights", "expected at least one weight above 0")
        if self.budget_tokens is None:
            raise KeyedError("budget_tokens", "required (or taken from mix.yaml)")
        object.__setattr__(self, "weights", {k: float(v) / total for k, v in weights.items()})
        if self.domain_column is None:
            object.__setattr__(self, "domain_column", "source")
        if self.exclude_heldout_fraction is None:
            object.__setattr__(self, "exclude_heldout_fraction", 0.0)
        return self


def parse_shards_config(raw: Any, base: str) -> ShardsConfig:
    return validate(ShardsConfig, raw, base)


def load_shards_config(path: str) -> ShardsConfig:
    return parse_shards_config(*load_yaml(path))
