"""Output layout, schema, manifest, stats, and byte-identical re-runs (1 and 2 worker processes)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import DATA, curate, read_rows
from pipelines.schema import KEPT_SCHEMA, REJECTED_SCHEMA, doc_id


def small_config(output: str, **overrides):
    config = {
        "sources": [
            {"name": "web", "format": "html", "paths": [str(DATA / "web" / "0*.html.gz"), str(DATA / "web" / "1*.html.gz")]},
            {"name": "crawl", "format": "warc", "paths": [str(DATA / "warc" / "demo.warc.gz")]},
            {"name": "books", "format": "text", "paths": [str(DATA / "books" / "shakespeare__*.txt")]},
            {"name": "wiki", "format": "jsonl", "paths": [str(DATA / "wiki" / "wiki.jsonl.gz")]},
        ],
        "output": output,
        "filters": {"enabled": False},
        "write": {"shard_bytes": 1_000_000, "row_group_rows": 50},
    }
    config.update(overrides)
    return config


def shard_digests(output: str) -> dict[str, str]:
    out = {}
    for kind in ("kept", "rejected"):
        for name in sorted(os.listdir(Path(output) / kind)):
            out[f"{kind}/{name}"] = hashlib.sha256((Path(output) / kind / name).read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    return curate(tmp_path_factory.mktemp("run"), small_config("out"))


def test_layout(first):
    out = Path(first.output)
    assert sorted(p.name for p in out.iterdir()) == [".refinery", "_SUCCESS", "data_card.json", "data_card.md", "funnel.png",
                                                     "kept", "licenses.png", "manifest.json", "rejected",
                                                     "stats.json"]
    kept = sorted(os.listdir(out / "kept"))
    assert len(kept) > 1  # shard_bytes forces several shards
    assert all(n.endswith(f"-of-{len(kept):05d}.parquet") for n in kept)
    assert not [n for n in os.listdir(out / "kept") if n.endswith(".tmp")]


def test_schema_and_columns(first):
    out = Path(first.output)
    for name in os.listdir(out / "kept"):
        f = pq.ParquetFile(out / "kept" / name)
        assert f.schema_arrow.equals(KEPT_SCHEMA)
        assert f.metadata.row_group(0).column(0).compression == "ZSTD"
        assert f.metadata.row_group(0).num_rows <= 50
    for name in os.listdir(out / "rejected"):
        assert pq.ParquetFile(out / "rejected" / name).schema_arrow.equals(REJECTED_SCHEMA)
    kept = read_rows(out, "kept")
    for row in kept[:200]:
        assert row["id"] == doc_id(row["source_uri"], row["locator"])
        assert row["n_chars"] == len(row["text"]) > 0
        assert row["n_words"] > 0 and len(row["content_hash"]) == 32
        assert row["lang"] and 0.0 <= row["lang_score"] <= 1.0
        json.loads(row["metadata"])
    ids = [r["id"] for r in kept] + [r["id"] for r in read_rows(out, "rejected")]
    assert len(ids) == len(set(ids))


def test_stats_account_for_every_record(first):
    stats = json.loads((Path(first.output) / "stats.json").read_text())
    assert set(stats["sources"]) == {"web", "crawl", "books", "wiki"}
    assert stats["sources"]["wiki"]["read"] == 104
    assert stats["sources"]["books"]["read"] == 12
    for s in stats["sources"].values():
        assert s["kept"] + s["rejected"] == s["read"]
        assert s["stages"]["read"]["in"] == s["read"]
        assert s["stages"]["dedup"]["out"] == s["kept"]
        assert s["stages"]["dedup"]["chars_in"] >= s["chars_kept"]
    # the WARC holds copies of 15 web pages, 7 of which are in this run's web glob: exact dedup pairs them
    dups = sum(s["rejected_by_reason"].get("dedup:exact", 0) for s in stats["sources"].values())
    assert dups == 7
    kept = read_rows(first.output, "kept")
    clusters = [r for r in kept if r["dup_cluster_size"] == 2]
    assert len(clusters) == 7


def test_manifest_matches_files(first):
    out = Path(first.output)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_hash"] and manifest["versions"]["apache-beam"].startswith("2.")
    for kind in ("kept", "rejected"):
        listed = {e["path"]: e for e in manifest[kind]}
        assert set(listed) == set(os.listdir(out / kind))
        for name, e in listed.items():
            data = (out / kind / name).read_bytes()
            assert e["bytes"] == len(data)
            assert e["sha256"] == hashlib.sha256(data).hexdigest()
            assert e["rows"] == pq.ParquetFile(out / kind / name).metadata.num_rows


def test_rerun_is_byte_identical_and_replaces_old_shards(first):
    before = shard_digests(first.output)
    base = Path(first.output).parent
    # a stray shard from an older run with another shard count must not survive the re-run
    (Path(first.output) / "kept" / "part-00000-of-00099.parquet").write_bytes(b"old")
    again = curate(base, small_config("out"))
    assert shard_digests(again.output) == before


def test_two_worker_processes_give_the_same_bytes(first, tmp_path):
    multi = curate(tmp_path, small_config("out"), workers=2)
    assert multi.stats["workers"] == 2
    assert shard_digests(multi.output) == shard_digests(first.output)


def test_two_worker_threads_give_the_same_bytes(first, tmp_path):
    threads = curate(tmp_path, small_config("out"), workers=2, threads=True)
    assert threads.stats["workers"] == 2 and threads.stats["threads"] is True
    assert shard_digests(threads.output) == shard_digests(first.output)


def test_stage_switches(tmp_path):
    result = curate(tmp_path, small_config("out", dedup={"enabled": False}, pii={"enabled": False}))
    for s in result.stats["sources"].values():
        assert not any(r.startswith(("dedup:", "filter:")) for r in s["rejected_by_reason"])
    assert result.stats["totals"]["kept"] == result.stats["totals"]["read"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc, timeout: float = 60) -> None:
    import socket
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the service exited"
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.lists(st.text(max_size=5), min_size=40, max_size=40))
def test_rows_of_a_piece_are_the_rows_taken(picks, texts):
    """output._rows slices where the positions are one run and copies otherwise: the rows are take()'s."""
    import pyarrow as pa

    from pipelines.write.output import _rows

    table = pa.table({"row": list(range(len(picks))), "text": texts[:len(picks)]})
    take = [i for i, pick in enumerate(picks) if pick]
    if take:
        assert _rows(table, take).equals(table.take(take))


def test_parquet_is_read_as_read_table_reads_it(first):
    """files.read_parquet gives pq.read_table's table, with the columns in the order asked for."""
    from pipelines.runtime.files import read_parquet

    path = next((Path(first.output) / "kept").glob("*.parquet"))
    assert read_parquet(str(path)).equals(pq.read_table(path))
    columns = ["url", "id", "n_chars"]
    with open(path, "rb") as fh:
        table = read_parquet(fh, columns)
    assert table.column_names == columns and table.equals(pq.read_table(path, columns=columns))
