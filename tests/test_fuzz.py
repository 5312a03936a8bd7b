"""Fuzzing the readers: hypothesis picks seeds of malformed JSONL, WARC, HTML and Parquet files
(tests/fuzzing.py); every file must read without an exception and keep the reader's invariants. A pipeline run
over a fixed set of such files checks the job's own: it completes, kept + rejected == read, ids are unique,
metadata is strict JSON. benchmarks/fuzz_readers.py runs the same checks for longer."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fuzzing
from conftest import ROOT, read_rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(fuzzing.FORMATS), seed=st.integers(0, 10**9))
@example(fmt="warc", seed=0)  # a ".warc.gz" that is not gzip: the search for the next record raised
@example(fmt="warc", seed=1)  # a damaged member just past a range: the range reading it whole must report it
@example(fmt="warc", seed=45)  # a member cut by the end of the file just past a range: the same
@example(fmt="warc", seed=1002347)  # a failure placed before a record already read: the reader looped
@example(fmt="warc", seed=1003343)  # a member the file ends inside swallowed the member after it
@example(fmt="warc", seed=2024987)  # warcio stopped at a member without a WARC record: the rest was lost
@example(fmt="warc", seed=2027434)  # a sound member failing mid-stream: read afresh, as a range would
@example(fmt="warc", seed=4027302)  # members nested two deep in a stored payload
@example(fmt="html", seed=1037072)  # control characters lxml parses but refuses to be given back
def test_readers_keep_their_invariants(tmp_path, fmt, seed):
    path = tmp_path / f"{fmt}-{seed}{fuzzing.SUFFIX[fmt]}"
    path.write_bytes(fuzzing.make(fmt, seed))
    signal.signal(signal.SIGALRM, _hang)
    signal.alarm(30)  # a reader that loops fails here instead of hanging CI
    try:
        fuzzing.check_file(fmt, str(path))
    finally:
        signal.alarm(0)


def _hang(signum, frame):
    raise AssertionError("reading took more than 30 s: a loop")


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    for fmt in fuzzing.FORMATS:
        (base / "in" / fmt).mkdir(parents=True)
        for seed in range(10):
            (base / "in" / fmt / f"{seed}{fuzzing.SUFFIX[fmt]}").write_bytes(fuzzing.make(fmt, seed))
    config = {"sources": [{"name": f, "format": f, "paths": [f"in/{f}/*"]} for f in fuzzing.FORMATS],
              "output": "out", "dedup": {"enabled": True}, "extract": {"split_bytes": 4096}}
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "curate", "curate.yaml", "--workers", "2", "--quiet"],
                          cwd=base, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return base, done


def test_a_job_over_fuzzed_files_completes_and_accounts_for_every_record(fuzz_run):
    base, done = fuzz_run
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((base / "out" / "stats.json").read_text())
    rows = read_rows(base / "out", "kept") + read_rows(base / "out", "rejected")
    assert len(rows) == stats["totals"]["read"] == stats["totals"]["kept"] + stats["totals"]["rejected"]
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        json.loads(row["metadata"], parse_constant=lambda c: pytest.fail(f"{c} in metadata"))
        assert row.get("reason") is None or row["detail"] is not None
    assert stats["totals"]["rejected"] > 0 and stats["totals"]["read"] > 40
