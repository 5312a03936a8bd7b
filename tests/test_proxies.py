"""Proxy models on the CPU: learning, domain sensitivity, determinism, the run cache, resume, held-out split."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA, curate
from pipelines.config.base import ConfigError
from pipelines.config.swarm import parse_swarm_config
from pipelines.jobs.swarm import run_swarm
from proxies.data import MixtureSampler, domain_order, is_heldout, load_pool, split_value, tokenize_pool
from proxies.evals import EvalSet, _windows, build_suite, paired_eval_se, score_suite
from proxies.model import GPTConfig, StackedGPT
from proxies.swarm import Swarm, make_run, noise_floor, paired_noise
from proxies.tokenizer import BpeTokenizer, ByteTokenizer
from proxies.train import TrainSettings, train_group

TINY = GPTConfig(vocab_size=256, n_layer=2, n_head=2, d_model=32, context=64)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    """A real curated pool of two domains: plays and poems, and Python source."""
    base = tmp_path_factory.mktemp("pool")
    curate(base, {
        "sources": [{"name": "books", "format": "text", "paths": [str(DATA / "books" / "*.txt")]},
                    {"name": "code", "format": "text", "paths": [str(DATA / "code" / "*.py")]}],
        "output": "pool",
        "filters": {"enabled": False},
        "dedup": {"minhash": {"enabled": False}},
    })
    return base / "pool"


@pytest.fixture(scope="module")
def pool(pool_dir):
    p = load_pool(str(pool_dir), heldout_fraction=0.2)
    tokenize_pool(p, ByteTokenizer())
    return p


def suite_for(pool):
    return build_suite([{"name": "books", "domain": "books"}, {"name": "code", "domain": "code"}], ".", pool, 20_000)


def settings(**kw):
    return TrainSettings(**{"steps": 80, "batch": 16, "lr": 3e-3, "warmup": 10, "group_size": 4, "threads": 2, **kw})


def test_heldout_split_is_by_id_and_disjoint(pool):
    for d in pool.domains:
        assert d.heldout_ids and d.train_ids
        assert not set(d.heldout_ids) & set(d.train_ids)
        # held out by id: below the fraction, or the lowest-valued document of a domain that drew none
        assert all(is_heldout(i, 0.2) for i in d.heldout_ids) or len(d.heldout_ids) == 1
        assert not any(is_heldout(i, 0.2) for i in d.train_ids)
        assert max(split_value(i) for i in d.heldout_ids) <= min(split_value(i) for i in d.train_ids) or \
            all(is_heldout(i, 0.2) for i in d.heldout_ids)
        # the held-out texts never reach the training stream
        stream = bytes(d.tokens.astype(np.uint8))
        for text in d.heldout_texts:
            assert text.encode()[:2000] not in stream


def test_a_bounded_sample_by_id_whatever_the_layout(pool_dir, pool, tmp_path):
    """`mix` reads a bounded sample per domain: documents by a hash of their id until the byte budget, held-out
    ids never in training, the same documents however the pool is sharded; the prior counts whole domains; the
    ids are stored in 16 bits, memory-mapped."""
    import pyarrow.parquet as pq
    from pipelines.write.output import list_shards

    budget = 60_000
    sampled = load_pool(str(pool_dir), heldout_fraction=0.2, sample_bytes=budget, heldout_bytes=10_000)
    tokenize_pool(sampled, ByteTokenizer(), str(tmp_path / "tokens"))
    for d, whole in zip(sampled.domains, pool.domains):
        assert set(d.train_ids) < set(whole.train_ids) and set(d.heldout_ids) <= set(whole.heldout_ids)
        assert budget <= d.sample_bytes < budget + max(len(t.encode()) for t in whole.train_texts)
        assert d.train_bytes == whole.train_bytes and d.train_documents == len(whole.train_ids)
        assert 10_000 <= sum(len(t.encode()) for t in d.heldout_texts)
        assert isinstance(d.tokens, np.memmap) and d.tokens.dtype == np.uint16
        assert len(d.tokens) == d.sample_bytes + len(d.train_ids)  # bytes and one end-of-text id each
        assert abs(d.total_tokens - len(whole.tokens)) < 0.05 * len(whole.tokens)
        assert d.seen()["share"] < 1
    assert np.allclose(sampled.prior(), pool.prior())
    assert sampled.manifest_hash != pool.manifest_hash  # the run cache tells the sample from the whole pool

    # the same pool cut another way: rows reversed, small row groups, two files
    other = tmp_path / "resharded"
    (other / "kept").mkdir(parents=True)
    rows = [r for p in sorted((pool_dir / "kept").glob("*.parquet")) for r in pq.read_table(p).to_pylist()][::-1]
    schema = pq.read_schema(next((pool_dir / "kept").glob("*.parquet")))
    half = len(rows) // 2
    for i, part in enumerate((rows[:half], rows[half:])):
        pq.write_table(pa_table(part, schema), other / "kept" / f"part-{i}.parquet", row_group_size=7)
    (other / "manifest.json").write_text(json.dumps({"kept": list_shards(str(other / "kept"))}))
    again = load_pool(str(other), heldout_fraction=0.2, sample_bytes=budget, heldout_bytes=10_000)
    for d, e in zip(sampled.domains, again.domains):
        assert d.train_ids == e.train_ids and d.train_texts == e.train_texts and d.heldout_ids == e.heldout_ids


def pa_table(rows, schema):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema)


def test_bits_per_byte_fall_with_training(pool):
    suite = suite_for(pool)
    w = [pool.prior()]
    untrained = train_group(pool, w, [0], TINY, settings(steps=1, warmup=1), CPU)
    trained = train_group(pool, w, [0], TINY, settings(), CPU)
    before = score_suite(untrained.model, suite, ByteTokenizer(), CPU).bpb[0]
    after = score_suite(trained.model, suite, ByteTokenizer(), CPU).bpb[0]
    assert after["books"] < before["books"] - 1.0 and after["code"] < before["code"] - 1.0


def test_a_proxy_is_best_on_its_own_domain(pool):
    suite = suite_for(pool)
    books_only, code_only = pool.vector({"books": 1.0}), pool.vector({"code": 1.0})
    result = train_group(pool, [books_only, code_only], [0, 0], TINY, settings(steps=120), CPU)
    on_books, on_code = score_suite(result.model, suite, ByteTokenizer(), CPU).bpb
    assert on_books["books"] < on_code["books"]
    assert on_code["code"] < on_books["code"]


def test_stacked_proxies_match_proxies_trained_alone(pool):
    suite = suite_for(pool)
    mixes = [pool.prior(), pool.vector({"books": 1.0}), pool.vector({"code": 0.7, "books": 0.3})]
    together = score_suite(train_group(pool, mixes, [1, 2, 3], TINY, settings(steps=40), CPU).model, suite,
                           ByteTokenizer(), CPU).bpb
    alone = score_suite(train_group(pool, mixes[1:2], [2], TINY, settings(steps=40), CPU).model, suite,
                        ByteTokenizer(), CPU).bpb
    assert together[1]["books"] == pytest.approx(alone[0]["books"], abs=2e-3)
    assert together[1]["code"] == pytest.approx(alone[0]["code"], abs=2e-3)


def test_same_seed_same_numbers_and_cache(pool, tmp_path):
    suite = suite_for(pool)
    runs = [make_run(pool, {"books": 1, "code": 1}, 0), make_run(pool, {"code": 1}, 5)]
    a = Swarm(pool, suite, ByteTokenizer(), TINY, settings(steps=30), str(tmp_path / "a"), log=lambda m: None)
    rows_a = a.run(runs)
    b = Swarm(pool, suite, ByteTokenizer(), TINY, settings(steps=30), str(tmp_path / "b"), log=lambda m: None)
    rows_b = b.run(runs)
    assert [r["bpb_books"] for r in rows_a] == [r["bpb_books"] for r in rows_b]
    assert a.trained == b.trained == 2
    again = Swarm(pool, suite, ByteTokenizer(), TINY, settings(steps=30), str(tmp_path / "a"), log=lambda m: None)
    assert again.run(runs) == rows_a and again.trained == 0
    # a changed eval suite re-scores the saved weights and trains nothing
    smaller = build_suite([{"name": "books", "domain": "books"}], ".", pool, 5_000)
    rescored = Swarm(pool, smaller, ByteTokenizer(), TINY, settings(steps=30), str(tmp_path / "a"), log=lambda m: None)
    rows = rescored.run(runs)
    assert rescored.trained == 0 and rescored.rescored == 2 and "bpb_code" not in rows[0]
    # other training settings are other runs
    longer = Swarm(pool, suite, ByteTokenizer(), TINY, settings(steps=31), str(tmp_path / "a"), log=lambda m: None)
    longer.run(runs[:1])
    assert longer.trained == 1


def swarm_config(pool_dir: Path, out: Path, **kw) -> dict:
    tasks = out.parent / "tasks.jsonl"
    tasks.write_text("\n".join(json.dumps(t) for t in [
        {"context": "def add(a, b):\n    return", "gold": " a + b"},
        {"context": "To be, or not to be,", "gold": " that is the question"},
    ]) + "\n")
    cfg = {
        "pool": str(pool_dir), "output": str(out), "heldout_fraction": 0.2,
        "proxy": {"n_layer": 1, "n_head": 2, "d_model": 32, "context": 64},
        "train": {"steps": 25, "batch": 8, "warmup": 5, "group_size": 1, "threads": 1},
        "eval": {"max_bytes": 5000, "sets": [{"name": "books", "domain": "books"},
                                             {"name": "qa", "tasks": str(tasks), "weight": 0.5}]},
        "mixtures": ["natural", "one-hot", {"books": 0.5, "code": 0.5}],
        "seeds": [0, 1],
    }
    cfg.update(kw)
    return cfg


def test_killed_swarm_resumes(pool_dir, tmp_path):
    out = tmp_path / "swarm"
    cfg = swarm_config(pool_dir, out)
    path = tmp_path / "swarm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    exe = Path(sys.executable).parent / "refinery"
    proc = subprocess.Popen([str(exe), "swarm", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs_dir = out / "runs"
    deadline = time.time() + 240
    while time.time() < deadline:
        done = list(runs_dir.glob("*/result.json")) if runs_dir.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(list(runs_dir.glob("*/result.json")))
    assert 2 <= finished < 8, "the swarm should be killed part-way"
    result = run_swarm(parse_swarm_config(cfg, str(tmp_path)))
    assert result["summary"]["trained_now"] == 8 - finished
    assert len(result["rows"]) == 8 and len(list(runs_dir.glob("*/result.json"))) == 8
    import pyarrow.parquet as pq

    table = pq.read_table(out / "swarm.parquet").to_pylist()
    assert len(table) == 8 and all(np.isfinite(r["bpb_qa"]) and np.isfinite(r["bpb_books"]) for r in table)
    assert {r["seed"] for r in table} == {0, 1}
    assert abs(table[0]["w_books"] + table[0]["w_code"] - 1.0) < 1e-9
    nf = result["summary"]["noise_floor"]["objective"]
    assert nf["noise_sd"] is not None and nf["across_mixtures_sd"] is not None


def test_swarm_config_errors(tmp_path):
    base = swarm_config(tmp_path, tmp_path / "o")
    bad = [
        ({"mixtures": ["sometimes"]}, "mixtures[0]: expected one of natural"),
        ({"seeds": ["a"]}, "seeds[0]: expected int, got 'a'"),
        ({"seeds": []}, "seeds: expected at least 1 item(s), got []"),
        ({"train": {"stepz": 3}}, "train.stepz: unknown key"),
        ({"eval": {"sets": [{"name": "x"}]}}, "eval.sets[0]: expected exactly one of domain, path, tasks"),
        ({"tokenizer": {"kind": "words"}}, "tokenizer.kind: expected one of bytes, bpe, got 'words'"),
        ({"heldout_fraction": 1.5}, "heldout_fraction: expected a value < 1, got 1.5"),
        ({"train": {"average_last": 1.0}}, "train.average_last: expected a fraction of the steps in [0, 1)"),
    ]
    for change, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_swarm_config({**base, **change}, str(tmp_path))


def test_windows_predict_every_token_once():
    ids = np.arange(1, 12)
    seqs, mask = _windows(ids, 4)
    predicted = [int(seqs[i, j + 1]) for i in range(len(seqs)) for j in range(4) if mask[i, j]]
    assert predicted == list(range(2, 12))


def test_bpe_tokenizer_trains_offline_and_scores_in_bytes(pool):
    texts = [t for d in pool.domains for t in d.train_texts][:20]
    tok = BpeTokenizer.train(texts, vocab_size=600)
    assert tok.vocab_size <= 600 and tok.eot == 0
    ids = tok.encode("def add(a, b):\n    return a + b")
    assert len(ids) < len("def add(a, b):\n    return a + b")
    model = StackedGPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=32, context=64), 1)
    model.init_weights([0])
    suite = build_suite([{"name": "code", "domain": "code"}], ".", pool, 3_000)
    bpb = score_suite(model, suite, tok, CPU).bpb[0]["code"]
    # an untrained model spreads probability over the vocabulary: about log2(V) bits per token
    assert 1.0 < bpb < np.log2(tok.vocab_size) * 1.5


def test_common_random_numbers_in_the_data_order(pool):
    """Same seed: every proxy reads each domain in the same order, and nearby mixtures fill the same slots
    from the same domains; the n-th window of a domain does not depend on the mixture."""
    ctx = TINY.context
    a = MixtureSampler(pool, pool.vector({"books": 0.5, "code": 0.5}), 3, ctx)
    b = MixtureSampler(pool, pool.vector({"books": 0.55, "code": 0.45}), 3, ctx)
    other = MixtureSampler(pool, pool.vector({"books": 0.5, "code": 0.5}), 4, ctx)
    sa, sb, so = (np.concatenate([s.starts(16) for _ in range(50)]) for s in (a, b, other))
    offsets = a.offsets
    # 5 points of weight moved: about 1 slot in 20 changes domain
    assert ((sa < offsets[1]) == (sb < offsets[1])).mean() > 0.9
    assert (sa == so).mean() < 0.05  # another seed is another draw
    books_a = sa[(sa >= offsets[0]) & (sa < offsets[1])]
    books_b = sb[(sb >= offsets[0]) & (sb < offsets[1])]
    n = min(len(books_a), len(books_b))
    assert n > 300 and (books_a[:n] == books_b[:n]).all()  # one read order per domain and seed
    # within an epoch a domain's windows never overlap: each text is read once before any is read again
    order = domain_order(pool, 1, 3, ctx)
    phase = int(order.take(0, 1)[0]) % ctx
    first = order.take(0, (order.limit - phase) // ctx + 1)  # the whole first epoch
    assert len(set(first.tolist())) == len(first) and (np.diff(np.sort(first)) == ctx).all()
    # a domain of weight 0 is never read, and shares follow the weights
    c = MixtureSampler(pool, pool.vector({"code": 1.0}), 3, ctx)
    assert (np.concatenate([c.starts(64) for _ in range(10)]) >= offsets[1]).all()
    assert abs((sa < offsets[1]).mean() - 0.5) < 0.05


def test_paired_noise_removes_the_common_seed_shift():
    rng = np.random.default_rng(0)
    mixes = {"a": 3.0, "b": 3.1, "c": 3.3}
    shift = {0: 0.0, 1: 0.05, 2: -0.04, 3: 0.02}
    rows = [{"mixture": m, "seed": s, "objective": mu + shift[s] + rng.normal(0, 0.001), "bpb_x": mu}
            for m, mu in mixes.items() for s in shift]
    ss, df = paired_noise(rows, "objective")
    assert df == (3 - 1) * (4 - 1)
    assert 0.0003 < np.sqrt(ss / df) < 0.002  # the 0.001 noise, not the 0.04 seed shifts
    floor = noise_floor([rows], [EvalSet("x", 1.0, "text")])["objective"]
    assert floor["seed_sd"] > 0.03 and floor["noise_sd"] < 0.002
    assert floor["across_mixtures_sd"] == pytest.approx(np.std([3.0, 3.1, 3.3], ddof=1), abs=0.003)


def test_paired_eval_noise():
    suite = [EvalSet("x", 1.0, "text")]
    nbytes = {"x": np.full(400, 100)}
    rng = np.random.default_rng(1)
    base = rng.normal(300, 40, 400)
    same = paired_eval_se({"x": base}, {"x": base}, nbytes, suite)
    close = paired_eval_se({"x": base + rng.normal(0, 1, 400)}, {"x": base}, nbytes, suite)
    far = paired_eval_se({"x": base + rng.normal(0, 10, 400)}, {"x": base}, nbytes, suite)
    assert same == 0.0 and 0 < close < far
    assert far == pytest.approx(10 * np.sqrt(400) / 40_000, rel=0.15)  # sd of the summed differences / bytes
