"""The swarm and mix jobs' config (`refinery swarm`, `refinery mix`): a curated pool, the proxies trained on
mixtures of it, the target eval suite and, for mix, how the mixture is chosen."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from proxies.train import TrainSettings
from pipelines.config.base import Items, Job, KeyedError, Name, Named, Section, Strings, load_yaml, resolve, validate

NAMED_MIXTURES = ("natural", "uniform", "one-hot")


class TokenizerSettings(Section):
    kind: Literal["bytes", "bpe"] = Field("bytes", description="bpe: trained offline on the pool's training split")
    vocab_size: int = Field(4096, ge=257)


class ProxySettings(Section):
    n_layer: int = Field(2, ge=1)
    n_head: int = Field(4, ge=1)
    d_model: int = Field(64, ge=1, description="a multiple of n_head")
    context: int = Field(256, ge=8)

    @model_validator(mode="after")
    def _heads(self) -> ProxySettings:
        if self.d_model % self.n_head:
            raise KeyedError("d_model", "expected a multiple of proxy.n_head")
        return self


class EvalSet(Section):
    """One eval set of the target suite: a pool domain's held-out text, a text file, or a task file."""

    name: Name
    weight: float = Field(1.0, ge=0.0)
    domain: str | None = None
    path: str | None = None
    tasks: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> EvalSet:
        kinds = [k for k in ("domain", "path", "tasks") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"expected exactly one of domain, path, tasks (got {kinds or 'none'})")
        return self


class EvalSettings(Section):
    sets: Annotated[Named[EvalSet], Field(min_length=1)]
    max_bytes: int = Field(100_000, ge=1000, description="eval text per set")


class MixSettings(Section):
    budget_tokens: float = Field(1e9, gt=0, description="the training budget the mixture is for")
    max_epochs: float = Field(4.0, gt=0, description="no domain repeated more often than this at the budget")
    swarm_size: int = Field(0, ge=0, description="sampled mixtures; 0: 3 x (domains + 1)")
    noise_mixtures: int = Field(2, ge=0, description="sampled mixtures also trained with noise_seeds more seeds")
    noise_seeds: int = Field(2, ge=0)
    exponent: float = Field(0.5, ge=0, description="the prior is flattened by this exponent")
    min_concentration: float = Field(0.1, gt=0)
    max_concentration: float = Field(5.0, gt=0)
    min_weight: float = Field(0.01, ge=0, lt=1, description="smaller sampled weights are zeroed")
    kl_weight: float = Field(0.02, ge=0, description="the optimiser's penalty on KL(mixture || prior)")
    search_samples: int = Field(20_000, ge=1, description="mixtures scored by the fitted model")
    confirm_runs: int = Field(2, ge=1, description="seeds per confirmation mixture (chosen, prior, uniform)")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _concentrations(self) -> MixSettings:
        if self.min_concentration > self.max_concentration:
            raise KeyedError("min_concentration", "expected min_concentration <= max_concentration")
        return self


Mixture = Literal["natural", "uniform", "one-hot"] | dict[str, Annotated[float, Field(ge=0.0)]]


class SwarmConfig(Job):
    """`refinery swarm` and `refinery mix`: proxies trained on mixtures of a curated pool, scored on evals."""

    pool: str = Field(description="a curate output folder")
    output: str
    eval: EvalSettings
    domain_column: str = Field("source", description="the column whose values are the mixture's domains")
    domains: Strings = Field((), description="the domains to mix; empty: every value of domain_column")
    heldout_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    tokenizer: TokenizerSettings = TokenizerSettings()
    proxy: ProxySettings = ProxySettings()
    train: TrainSettings = TrainSettings()
    mixtures: Annotated[Items[Mixture], Field(min_length=1)] = NAMED_MIXTURES
    seeds: Annotated[Items[int], Field(min_length=1)] = (0,)
    mix: MixSettings = MixSettings()
    sample_tokens: int = Field(0, ge=0, description="training tokens read per domain (a sample by id hash); 0: "
                               "4 x what one proxy reads, train.steps x train.batch x (proxy.context + 1)")

    @field_validator("pool", "output")
    @classmethod
    def _resolve(cls, path: str, info: ValidationInfo) -> str:
        return resolve(path, info)

    @property
    def eval_sets(self) -> list[dict]:
        return [s.model_dump(exclude_none=True) for s in self.eval.sets]

    @property
    def eval_max_bytes(self) -> int:
        return self.eval.max_bytes

    @property
    def sample_bytes(self) -> int:
        """Training text read per domain: `sample_tokens` at one byte a token (bytes), four (BPE)."""
        tokens = self.sample_tokens or 4 * self.train.steps * self.train.batch * (self.proxy.context + 1)
        return tokens * (1 if self.tokenizer.kind == "bytes" else 4)


def parse_swarm_config(raw: Any, base: str) -> SwarmConfig:
    return validate(SwarmConfig, raw, base)


def load_swarm_config(path: str) -> SwarmConfig:
    """Read and validate a swarm or mix config file."""
    return parse_swarm_config(*load_yaml(path))
