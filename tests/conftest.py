"""Shared helpers: real data paths and a one-call curate run on a config written into a temp folder."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.config.curate import parse_config
from pipelines.jobs.curate import CurateResult, run_curate

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
WEB = DATA / "web"


# The files that take longest, started first: with one file per test process at a time, a long file begun last
# would leave the other cores idle at the end.
LONGEST_FIRST = ("test_resume.py", "test_buckets.py", "test_pdf.py", "test_faults.py", "test_mix.py",
                 "test_splits.py", "test_dedup.py", "test_output.py")


if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # test processes side by side: torch's threads share the cores
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0))
                                                     // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def ground_truth() -> dict[str, dict[str, str]]:
    return json.loads((WEB / "ground-truth.json").read_text())


def page_bytes(name: str) -> bytes:
    return gzip.open(WEB / f"{name}.html.gz").read()


def curate(base: Path, config: dict[str, Any], workers: int = 1, threads: bool = False) -> CurateResult:
    """Write `config` to base/curate.yaml and run the real Beam pipeline on it."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    cfg = parse_config(config, str(base))
    return run_curate(cfg, workers=workers, show_progress=False, threads=threads)


def line_numbers(path: str | Path) -> dict[str, int]:
    """The 1-based line number of every JSONL record, by its locator (`offset:N`, the line's byte offset)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out, at = {}, 0
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            out[f"offset:{at}"] = number
            at += len(line)
    return out


def read_rows(output: str | Path, kind: str) -> list[dict[str, Any]]:
    folder = Path(output) / kind
    rows: list[dict[str, Any]] = []
    for name in sorted(os.listdir(folder)):
        rows.extend(pq.read_table(folder / name).to_pylist())
    return rows


@pytest.fixture(scope="session")
def truth() -> dict[str, dict[str, str]]:
    return ground_truth()


def three_domain_pool(base: Path, licenses: dict[str, dict] | None = None) -> Path:
    """A real curated pool of plays and poems, Python source and Wikipedia articles (filters off).

    The files are copied beside the config, so source URIs, and with them document ids and every seeded choice
    made from ids, are the same on every machine.
    """
    import shutil

    licenses = licenses or {}
    for name in ("books", "code", "wiki"):
        shutil.copytree(DATA / name, base / "data" / name)
    curate(base, {
        "sources": [{"name": "books", "format": "text", "paths": ["data/books/*.txt"], **licenses.get("books", {})},
                    {"name": "code", "format": "text", "paths": ["data/code/*.py"], **licenses.get("code", {})},
                    {"name": "wiki", "format": "jsonl", "paths": ["data/wiki/wiki.jsonl.gz"], **licenses.get("wiki", {})}],
        "output": "pool", "filters": {"enabled": False}, "dedup": {"minhash": {"enabled": False}}})
    return base / "pool"


@pytest.fixture(scope="session")
def pool3(tmp_path_factory) -> Path:
    return three_domain_pool(tmp_path_factory.mktemp("pool3"))
