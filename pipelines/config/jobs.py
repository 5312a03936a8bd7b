"""Every job's config by name: for `refinery config schema JOB` and `refinery config check FILE`."""
from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel

from pipelines.config.base import ConfigError, load_yaml, validate

JOBS = ("curate", "classifier", "swarm", "mix", "shards", "run")


def model_of(job: str) -> type[BaseModel]:
    if job == "curate":
        from pipelines.config.curate import CurateConfig
        return CurateConfig
    if job == "classifier":
        from pipelines.config.classifier import ClassifierTrainConfig
        return ClassifierTrainConfig
    if job in ("swarm", "mix"):
        from pipelines.config.swarm import SwarmConfig
        return SwarmConfig
    if job == "shards":
        from pipelines.config.shards import ShardsConfig
        return ShardsConfig
    if job == "run":
        from pipelines.config.run import RunConfig
        return RunConfig
    raise ConfigError(f"job: expected one of {', '.join(JOBS)}, got {job!r}")


def schema(job: str) -> dict[str, Any]:
    """The JSON Schema of a job's config file (what an editor uses to complete and check it)."""
    out = model_of(job).model_json_schema()
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = f"refinery {job} config"
    return out


def schema_text(job: str) -> str:
    return json.dumps(schema(job), indent=2, sort_keys=True) + "\n"


def guess_job(raw: Any) -> str:
    """Which job a config is for, from its keys."""
    keys = set(raw) if isinstance(raw, dict) else set()
    if "sources" in keys:
        return "curate"
    if "labels" in keys:
        return "classifier"
    if keys & {"curate", "classifier", "mix", "shards"} and not keys & {"pool", "output"}:
        return "run"
    if "eval" in keys:
        return "mix"
    if "pool" in keys:
        return "shards"
    raise ConfigError("config: cannot tell which job this config is for; name it: refinery config check FILE --job JOB")


def check(path: str, job: str | None = None) -> tuple[str, Any]:
    """Validate a config file as `job` (guessed from its keys when not given); (job, config) or ConfigError."""
    raw, base = load_yaml(path)
    job = job or guess_job(raw)
    return job, validate(model_of(job), raw, base)  # a run's steps are checked as each starts: an earlier step
                                                     # may write what a later one reads


SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def schema_file(job: str) -> str:
    """Where the committed schema of a job lives (example configs point their yaml-language-server line at it)."""
    return os.path.join(SCHEMA_DIR, f"{job}.schema.json")


def write_schemas() -> list[str]:
    """Write every job's schema file (run after changing a config model: a test checks they are current)."""
    os.makedirs(SCHEMA_DIR, exist_ok=True)
    out = []
    for job in JOBS:
        if job == "mix":
            continue  # the mix config is the swarm config
        with open(schema_file(job), "w", encoding="utf-8") as fh:
            fh.write(schema_text(job))
        out.append(schema_file(job))
    return out


if __name__ == "__main__":
    print("\n".join(write_schemas()))
