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
    items = [("a", 100, 0.9), ("b", 100, 0.1), ("c", 100, 0.5)]
    picks, report = plan_domain(items, target=500, max_epochs=4, seed=0)
    second = [doc for doc, r in picks if r == 1]
    assert second == ["a", "c"]  # the best first, stopping once the target is met
    assert report["achieved_tokens"] == 500 and not report["capped"]
    picks, report = plan_domain(items, target=10_000, max_epochs=2, seed=0)
    assert report["capped"] and report["achieved_tokens"] == 600 and max(r for _, r in picks) == 1


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
    with pytest.raises(ValueError, match="no documents in the pool"):
        run_shards(make(pool, tmp_path / "x", weights={"books": 1, "poetry": 1}), workers=1)


def test_a_share_of_zero_is_not_capped(pool, tmp_path):
    out = tmp_path / "zero"
    manifest = run_shards(make(pool, out, weights={"books": 0.4, "code": 0.6, "wiki": 0.0}, budget_tokens=200_000),
                          workers=1)
    wiki = manifest["domains"]["wiki"]
    assert wiki["requested_tokens"] == 0 and wiki["achieved_tokens"] == 0 and not wiki["capped"]
    assert not any(r["capped"] for r in manifest["domains"].values())
    assert "CAPPED" not in shards_table(manifest)
