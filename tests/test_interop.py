"""A curate output read by the tools users already have: DuckDB, Hugging Face `datasets` (offline) and pandas get
the rows and the column types refinery wrote."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from classifiers.fasttext_model import TrainParams, train_classifier
from conftest import DATA, WEB, curate
from pipelines.schema import KEPT_SCHEMA, REJECTED_SCHEMA, scores_of


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    """Web pages (one of them twice, a duplicate) and a JSONL file with a broken line, filters on, scored by a
    fastText model trained here on plays and poems against Python source."""
    base = tmp_path_factory.mktemp("interop")
    prose = [p.read_text() for p in sorted((DATA / "books").glob("*.txt"))]
    code = [p.read_text() for p in sorted((DATA / "code").glob("*.py"))]
    examples = [("prose", " ".join(t.split()[i:i + 80])) for t in prose for i in range(0, 4000, 80)]
    examples += [("code", " ".join(t.split()[i:i + 80])) for t in code for i in range(0, 4000, 80)]
    train_classifier(examples, str(base / "prose.bin"), TrainParams(epoch=5), "prose", positive="prose")
    (base / "web").mkdir()
    pages = sorted(WEB.glob("*.html.gz"))[:12]
    for page in pages:
        shutil.copy(page, base / "web" / page.name)
    shutil.copy(pages[0], base / "web" / ("copy-" + pages[0].name))
    (base / "notes.jsonl").write_text('{"text": "Too short."}\n{"text": broken\n'
                                      + '{"text": "%s"}\n' % " ".join(prose[0].split()[:300]).replace('"', "'"))
    curate(base, {"sources": [{"name": "web", "format": "html", "paths": ["web/*.html.gz"]},
                              {"name": "notes", "format": "jsonl", "paths": ["notes.jsonl"]}],
                  "output": "out",
                  "classifiers": {"models": [{"name": "prose", "path": "prose.bin", "label": "prose", "threshold": 0.0}]}})
    return base / "out"


def written(output: Path, kind: str) -> pa.Table:
    """What refinery wrote, read with pyarrow, sorted by id."""
    table = pa.concat_tables(pq.read_table(p) for p in sorted((output / kind).glob("*.parquet")))
    return table.sort_by("id")


def plain(t: pa.DataType) -> pa.DataType:
    """A type without what a reader may drop on the way (nullability and names inside lists, string views)."""
    if pa.types.is_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list(t):
        return pa.list_(plain(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, plain(f.type)) for f in t])
    return pa.string() if t in (pa.string_view(), pa.large_string()) else t


@pytest.mark.parametrize("kind", ["kept", "rejected"])
def test_duckdb_reads_the_rows_and_types(output, kind):
    import duckdb

    expected = written(output, kind)
    assert expected.num_rows > 0 and expected.schema.equals((KEPT_SCHEMA if kind == "kept" else REJECTED_SCHEMA))
    con = duckdb.connect()
    got = con.execute(f"SELECT * FROM read_parquet('{output}/{kind}/*.parquet') ORDER BY id").to_arrow_table()
    assert got.column_names == expected.column_names
    assert [plain(f.type) for f in got.schema] == [plain(f.type) for f in expected.schema]
    assert got.to_pylist() == expected.to_pylist()
    if kind == "kept":  # the scores column reads as a map with DuckDB's own function
        prose = con.execute(f"SELECT id, map_from_entries(scores)['quality_prose'] FROM "
                            f"read_parquet('{output}/kept/*.parquet') ORDER BY id").fetchall()
        assert [p for _, p in prose] == pytest.approx([scores_of(r["scores"])["quality_prose"]
                                                       for r in expected.to_pylist()])


@pytest.mark.parametrize("kind", ["kept", "rejected"])
def test_hugging_face_datasets_loads_the_rows_and_types(output, kind, tmp_path, monkeypatch):
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    expected = written(output, kind)
    files = sorted(str(p) for p in (output / kind).glob("*.parquet"))
    ds = load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=str(tmp_path / "cache"))
    got = ds.data.table.sort_by("id")
    assert got.column_names == expected.column_names
    assert [plain(f.type) for f in got.schema] == [plain(f.type) for f in expected.schema]
    assert got.to_pylist() == expected.to_pylist()
    assert sorted(ds["id"]) == expected.column("id").to_pylist()


@pytest.mark.parametrize("kind", ["kept", "rejected"])
def test_pandas_reads_the_rows_and_types(output, kind):
    import pandas as pd

    expected = written(output, kind).to_pylist()
    df = pd.read_parquet(output / kind).sort_values("id").reset_index(drop=True)
    assert list(df.columns) == [f.name for f in (KEPT_SCHEMA if kind == "kept" else REJECTED_SCHEMA)]
    assert str(df["n_chars"].dtype) == "int64" and str(df["lang_score"].dtype) == "float32"
    assert str(df["dup_cluster_size"].dtype) in ("int32", "Int32", "float64")  # nullable ints: NaN without a value
    assert df["id"].tolist() == [r["id"] for r in expected]
    for column in ("text", "url", "lang", "metadata"):  # pandas spells a missing string NaN
        assert [None if pd.isna(v) else v for v in df[column]] == [r[column] for r in expected], column
    for got, want in zip(df["scores"], expected):
        assert scores_of(None if got is None else list(got)) == scores_of(want["scores"])
    if kind == "rejected":
        assert df["reason"].tolist() == [r["reason"] for r in expected]
        assert [None if pd.isna(v) else v for v in df["detail"]] == [r["detail"] for r in expected]
        assert {"dedup:exact", "read:invalid_json"} <= set(df["reason"])
