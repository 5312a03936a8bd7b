"""Training shards: shares, determinism, epoch caps, repeats by value, token files, held-out exclusion, a trainer."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipelines.config.base import ConfigError

from pipelines.config.shards import parse_shards_config
from pipelines.jobs.shards import plan_domain, run_shards, shards_table
from proxies.data import is_heldout
from proxies.model import GPTConfig, StackedGPT
from proxies.token_files import TokenWindows, documents


@pytest.fixture(scope="module")
def pool(pool3):
    return pool3


def make(pool: Path, out: Path, **kw):
    raw = {"pool": str(pool), "output": str(out), "weights": {"books": 0.3, "code": 0.5, "wiki": 0.2},
           "budget_tokens": 4_000_000, "max_epochs": 4, "seed": 0, "shard_tokens": 1_000_000,
           "exclude_heldout_fraction": 0.1, **kw}
    return parse_shards_config(raw, str(out.parent))


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("parquet", "tokens", "provenance") for p in sorted((folder / sub).iterdir())}


@pytest.fixture(scope="module")
def shards(pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "out"
    return out, run_shards(make(pool, out), workers=1)


def test_shares_caps_and_repeats(shards):
    out, manifest = shards
    d = manifest["domains"]
    for name, share in {"books": 0.3, "code": 0.5, "wiki": 0.2}.items():
        assert abs(d[name]["achieved_share"] - share) < 0.01 or d[name]["capped"], (name, d[name])
        assert abs(d[name]["achieved_tokens"] - d[name]["requested_tokens"]) <= 0.01 * 4_000_000 or d[name]["capped"]
    # code is small: taken whole, then repeated by value, never past max_epochs passes
    code = d["code"]
    assert code["available_tokens"] < code["requested_tokens"]
    assert max(int(r) for r in code["rows_by_repeat"]) <= 3
    rows = [r for p in sorted((out / "parquet").iterdir()) for r in pq.read_table(p).to_pylist()]
    assert sum(r["n_tokens"] for r in rows) == manifest["achieved_tokens"]
    repeats = {}
    for r in rows:
        repeats.setdefault((r["domain"], r["id"]), []).append(r["repeat"])
    assert all(sorted(v) == list(range(len(v))) for v in repeats.values())  # repeat indices 0..k-1, no gaps


def test_repeat_by_value_order():
    order, n, value = np.array([7, 3, 5], np.uint64), np.array([100, 100, 100]), np.array([0.9, 0.1, 0.5])
    docs, reps, report = plan_domain(order, n, value, target=500, max_epochs=4)
    assert list(docs[reps == 0]) == [1, 2, 0]  # every document once, in the seeded order
    assert list(docs[reps == 1]) == [0, 2]  # then the best first, stopping once the target is met
    assert report["achieved_tokens"] == 500 and not report["capped"]
    docs, reps, report = plan_domain(order, n, value, target=10_000, max_epochs=2)
    assert report["capped"] and report["achieved_tokens"] == 600 and reps.max() == 1


def test_same_seed_same_bytes(pool, shards, tmp_path):
    out, _ = shards
    again = tmp_path / "again"
    run_shards(make(pool, again), workers=2)
    assert digests(again) == digests(out)
    other = tmp_path / "other"
    run_shards(make(pool, other, seed=1), workers=1)
    assert digests(other) != digests(out)


def test_token_files_decode_to_the_parquet_text(shards):
    out, manifest = shards
    assert manifest["token_dtype"] == "uint16" and manifest["tokenizer"]["kind"] == "bytes"
    for p in sorted((out / "parquet").iterdir())[:2]:
        rows = pq.read_table(p).to_pylist()
        docs = documents(str(out), p.stem)
        assert len(docs) == len(rows)
        for row, toks in zip(rows[:50], docs[:50]):
            assert bytes(toks.astype(np.uint8)).decode("utf-8") == row["text"]


def test_token_files_open_with_numpy_memmap_by_their_documented_layout(shards):
    """README: .bin holds flat ids (the manifest's token_dtype), each document followed by the end-of-text id;
    .idx holds the int64 start of every document and the total at the end."""
    out, manifest = shards
    tokenizer = json.loads((out / "tokenizer.json").read_text())
    for p in sorted((out / "parquet").iterdir()):
        rows = pq.read_table(p, columns=["text", "n_tokens"]).to_pylist()
        ids = np.memmap(out / "tokens" / (p.stem + ".bin"), dtype=manifest["token_dtype"], mode="r")
        starts = np.memmap(out / "tokens" / (p.stem + ".idx"), dtype=np.int64, mode="r")
        assert len(starts) == len(rows) + 1 and starts[0] == 0 and starts[-1] == len(ids)
        assert list(np.diff(starts)) == [r["n_tokens"] for r in rows]
        for i in (0, len(rows) // 2, len(rows) - 1):
            doc = ids[starts[i]:starts[i + 1]]
            assert doc[-1] == tokenizer["eot"]
            assert bytes(doc[:-1].astype(np.uint8)).decode("utf-8") == rows[i]["text"]


def test_heldout_documents_never_enter_and_provenance(shards):
    out, manifest = shards
    prov = [r for p in sorted((out / "provenance").iterdir()) for r in pq.read_table(p).to_pylist()]
    assert prov and not any(is_heldout(r["id"], 0.1) for r in prov)
    assert sum(v.get("eval_heldout", 0) for v in (d["excluded"] for d in manifest["domains"].values())) > 0
    assert manifest["curated_manifest_sha256"] and len(manifest["files"]["parquet"]) >= 3
    shard_names = {p.stem for p in (out / "parquet").iterdir()}
    assert {r["shard"] for r in prov} == shard_names
    assert all(r["source_uri"] and r["locator"] for r in prov)


def test_a_trainer_reads_the_token_files(shards):
    out, _ = shards
    data = TokenWindows(str(out), context=64)
    assert len(data) > 1000
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    model = StackedGPT(GPTConfig(vocab_size=256, n_layer=1, n_head=2, d_model=32, context=64), 1)
    model.init_weights([0])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step, (x, y) in zip(range(30), loader):
        loss = model.losses(x[None], y[None]).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_config_errors(pool, tmp_path):
    with pytest.raises(ConfigError, match="exactly one of mix"):
        parse_shards_config({"pool": str(pool), "output": "o", "budget_tokens": 10}, str(tmp_path))
    with pytest.raises(ConfigError, match="mix: file not found"):
        parse_shards_config({"pool": str(pool), "output": "o", "mix": "nope.yaml"}, str(tmp_path))
    with pytest.raises(ConfigError, match="weights: the pool's 'source' column has no domain poetry"):
        run_shards(make(pool, tmp_path / "x", weights={"books": 1, "poetry": 1}), workers=1)
    assert not (tmp_path / "x").exists()


def test_a_share_of_zero_is_not_capped(pool, tmp_path):
    out = tmp_path / "zero"
    manifest = run_shards(make(pool, out, weights={"books": 0.4, "code": 0.6, "wiki": 0.0}, budget_tokens=200_000),
                          workers=1)
    wiki = manifest["domains"]["wiki"]
    assert wiki["requested_tokens"] == 0 and wiki["achieved_tokens"] == 0 and not wiki["capped"]
    assert not any(r["capped"] for r in manifest["domains"].values())
    assert "CAPPED" not in shards_table(manifest)


# ---- resume, Megatron files, rehydration, bad input -------------------------------------------------

def test_a_killed_run_rerun_writes_only_the_missing_shards(pool, shards, tmp_path, monkeypatch):
    """The writer dies after two shards are finished; the rerun writes the others only, and the output is
    byte-identical to a clean run."""
    import pipelines.jobs.shards as shards_module

    clean_out, clean = shards
    real = shards_module.write_shard
    written: list[str] = []

    def write_two_then_die(folder, name, *args, **kwargs):
        if len(written) == 2:
            raise RuntimeError("killed while writing")
        written.append(name)
        return real(folder, name, *args, **kwargs)

    monkeypatch.setattr(shards_module, "write_shard", write_two_then_die)
    out = tmp_path / "killed"
    with pytest.raises(Exception, match="killed while writing"):
        run_shards(make(pool, out), workers=1)
    assert sorted(p.stem for p in (out / ".staging" / "done").iterdir()) == sorted(written)
    assert not (out / "parquet").exists()  # nothing published
    again: list[str] = []
    monkeypatch.setattr(shards_module, "write_shard", lambda folder, name, *a, **k: again.append(name) or
                        real(folder, name, *a, **k))
    manifest = run_shards(make(pool, out), workers=1)
    assert manifest["shards_resumed"] == 2 and not set(again) & set(written)
    assert len(again) + 2 == len(clean["files"]["parquet"])
    assert digests(out) == digests(clean_out)
    assert not (out / ".work").exists() and not (out / ".staging").exists()


def read_megatron(prefix: Path) -> list[np.ndarray]:
    """Megatron-LM's indexed dataset, read from its specification (not from refinery's writer): the `.idx`
    header, sequence lengths and pointers, document indices; each document's ids from the `.bin`."""
    import struct

    idx = prefix.with_suffix(".idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    version, code, sequences, doc_count = struct.unpack("<QBQQ", idx[9:34])
    assert version == 1
    dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32,
             8: np.uint16}[code]
    at = 34
    lengths = np.frombuffer(idx, np.int32, sequences, at)
    at += 4 * sequences
    pointers = np.frombuffer(idx, np.int64, sequences, at)
    at += 8 * sequences
    doc_index = np.frombuffer(idx, np.int64, doc_count, at)
    assert at + 8 * doc_count == len(idx)
    data = np.memmap(prefix.with_suffix(".bin"), dtype=dtype, mode="r")
    out = []
    for d in range(doc_count - 1):
        seqs = [data[pointers[s] // np.dtype(dtype).itemsize:][: lengths[s]] for s in
                range(doc_index[d], doc_index[d + 1])]
        out.append(np.concatenate(seqs))
    return out


def test_megatron_files_read_back_token_identical(pool, tmp_path):
    out = tmp_path / "megatron"
    manifest = run_shards(make(pool, out, formats=["parquet", "tokens", "megatron"]), workers=1)
    assert manifest["megatron_dtype"] == "uint16" and manifest["files"]["megatron"]
    eot = manifest["tokenizer"]["eot"]
    for p in sorted((out / "parquet").iterdir()):
        rows = pq.read_table(p, columns=["text", "n_tokens"]).to_pylist()
        docs = read_megatron(out / "megatron" / p.stem)
        assert len(docs) == len(rows)
        ours = documents(str(out), p.stem)
        for row, doc, own in zip(rows, docs, ours):
            assert len(doc) == row["n_tokens"] and doc[-1] == eot
            assert np.array_equal(doc[:-1], own)
            assert bytes(doc[:-1].astype(np.uint8)).decode("utf-8") == row["text"]


def test_megatron_only_leaves_out_the_other_formats(pool, tmp_path):
    out = tmp_path / "only"
    manifest = run_shards(make(pool, out, formats=["megatron"]), workers=1)
    assert set(manifest["files"]) == {"provenance", "megatron"}
    assert not (out / "parquet").exists() and not (out / "tokens").exists()
    total = sum(len(d) for p in sorted((out / "megatron").glob("*.idx")) for d in read_megatron(p.with_suffix("")))
    assert total == manifest["achieved_tokens"]


def test_rehydration_copies_from_cluster_size_and_value():
    from pipelines.write.plan import rehydrated_copies

    sizes = np.array([0, 1, 2, 4, 5, 99, 100, 5000])
    value = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1])
    table = {1: 1, 2: 2, 5: 3, 100: 4}
    assert list(rehydrated_copies(sizes, value, table, 0.0, 4)) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert list(rehydrated_copies(sizes, value, table, 0.5, 4)) == [1, 1, 2, 2, 3, 3, 4, 1]  # poor: one copy
    assert list(rehydrated_copies(sizes, value, table, 0.0, 2.5)) == [1, 1, 2, 2, 2, 2, 2, 2]  # max_epochs caps
    order, n = np.arange(8, dtype=np.uint64), np.full(8, 10)
    copies = rehydrated_copies(sizes, value, table, 0.0, 4)
    docs, reps, report = plan_domain(order, n, value, target=1000, max_epochs=4, copies=copies)
    for doc in range(8):  # every copy a repeat index, 0..k-1, and no more than max_epochs in all
        got = sorted(reps[docs == doc])
        assert got == list(range(len(got))) and copies[doc] <= len(got) <= 4


def test_rehydration_end_to_end(pool, tmp_path):
    out = tmp_path / "rehydrated"
    manifest = run_shards(make(pool, out, rehydrate={"enabled": True, "copies": {1: 2}}, budget_tokens=400_000),
                          workers=1)
    assert manifest["rehydrate"]["copies"] == {"1": 2}
    rows = [r for p in sorted((out / "parquet").iterdir()) for r in pq.read_table(p, columns=["id", "repeat"]).to_pylist()]
    repeats: dict[str, list[int]] = {}
    for r in rows:
        repeats.setdefault(r["id"], []).append(r["repeat"])
    assert all(sorted(v) == [0, 1] for v in repeats.values())  # each document taken with both its copies
    assert all(d["rehydrated_documents"] == d["documents"] for d in manifest["domains"].values() if d["documents"])


def test_bad_input_is_one_line_and_writes_nothing(pool, tmp_path):
    import shutil

    from pipelines.cli import main

    def fails(message: str, **kw) -> None:
        out = tmp_path / "bad"
        with pytest.raises(ConfigError, match=message):
            run_shards(make(kw.pop("pool", pool), out, **kw), workers=1)
        assert not out.exists()

    fails("budget_tokens: 1,000,000,000 tokens cannot be met", budget_tokens=1e9)
    fails("domain_column: the pool has no column 'topic'", domain_column="topic")
    not_ours = tmp_path / "not-a-pool"
    (not_ours / "kept").mkdir(parents=True)
    shutil.copy(next((pool / "kept").iterdir()), not_ours / "kept" / "x.parquet")
    fails("pool: .* is not a curated pool", pool=not_ours)
    (not_ours / "manifest.json").write_text("[1, 2]")
    fails("pool: .* is not the manifest of a refinery curate output", pool=not_ours)
    config = tmp_path / "shards.yaml"
    config.write_text(json.dumps({"pool": str(pool), "output": str(tmp_path / "bad"), "weights": {"wiki": 1},
                                  "budget_tokens": 1e9}))
    assert main(["shards", str(config), "--workers", "1"]) == 2
    assert not (tmp_path / "bad").exists()


def test_sigkill_then_rerun_writes_the_clean_bytes(pool, tmp_path):
    """`refinery shards` killed with SIGKILL once some shards are finished; the same command again writes the
    rest only, and the output is byte-identical to a clean run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from conftest import ROOT

    config = {"pool": str(pool), "output": "out", "weights": {"books": 0.3, "code": 0.5, "wiki": 0.2},
              "budget_tokens": 400_000, "max_epochs": 4, "seed": 0, "shard_tokens": 2000,
              "exclude_heldout_fraction": 0.1}

    def command(base: Path) -> list[str]:
        base.mkdir(parents=True, exist_ok=True)
        (base / "shards.yaml").write_text(yaml.safe_dump(config))
        return [sys.executable, "-m", "pipelines.cli", "shards", str(base / "shards.yaml"), "--workers", "1"]

    clean = tmp_path / "clean"
    subprocess.run(command(clean), cwd=ROOT, check=True, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    markers = killed / "out" / ".staging" / "done"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and len(list(markers.glob("*.json"))
                                                                  if markers.exists() else []) < 5:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(markers.glob("*.json")))
    assert not (killed / "out" / "manifest.json").exists()
    rerun = subprocess.run(command(killed), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    manifest = json.loads((killed / "out" / "manifest.json").read_text())
    assert manifest["shards_resumed"] == finished >= 5
    assert len(manifest["files"]["parquet"]) > finished
    assert digests(killed / "out") == digests(clean / "out")
