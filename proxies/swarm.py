"""Swarm training with a run cache: one proxy per (mixture, seed), one row per run in `swarm.parquet`.

A run's key hashes (mixture, data manifest, tokenizer, model and training settings, seed). Each finished run
leaves `runs/<key>/weights.pt` and `runs/<key>/result.json` (written atomically), so a second call trains
nothing, a killed swarm resumes with the runs it had not finished, and a changed eval suite re-scores the saved
weights without retraining.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .data import DATA_ORDER, Pool
from .evals import EvalSet, Scores, objective, score_suite
from .model import GPTConfig, StackedGPT
from .tokenizer import Tokenizer
from .train import TrainSettings, pick_device, setup_cpu_threads, train_group
from pipelines.runtime import storage
from pipelines.runtime.files import arrow_output, atomic_open, write_json


@dataclass(frozen=True)
class Run:
    mixture: tuple[tuple[str, float], ...]  # (domain, weight), weights summing to 1, every pool domain listed
    seed: int

    def weights(self) -> dict[str, float]:
        return dict(self.mixture)


def make_run(pool: Pool, mixture: dict[str, float], seed: int) -> Run:
    w = pool.vector(mixture)
    return Run(tuple((n, round(float(x), 10)) for n, x in zip(pool.names, w)), seed)


def run_key(run: Run, pool: Pool, tokenizer: Tokenizer, config: GPTConfig, settings: TrainSettings) -> str:
    body = json.dumps({"mixture": run.mixture, "seed": run.seed, "data": pool.manifest_hash, "order": DATA_ORDER,
                       "tokenizer": tokenizer.describe(), "model": config.as_dict(), "train": settings.as_dict()},
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def suite_key(suite: list[EvalSet]) -> str:
    return hashlib.sha256("|".join(es.fingerprint() for es in suite).encode()).hexdigest()[:16]


class Swarm:
    def __init__(self, pool: Pool, suite: list[EvalSet], tokenizer: Tokenizer, config: GPTConfig,
                 settings: TrainSettings, out_dir: str, log: Callable[[str], None] | None = None) -> None:
        self.pool, self.suite, self.tokenizer = pool, suite, tokenizer
        self.config, self.settings, self.out_dir = config, settings, out_dir
        self.device = pick_device(settings.device)
        if self.device.type == "cpu":
            setup_cpu_threads(settings.threads)
        self.suite_key = suite_key(suite)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.trained = 0  # proxies trained by this object (the cache makes it 0 on a repeated call)
        self.rescored = 0
        storage.makedirs(os.path.join(out_dir, "runs"))

    def _dir(self, key: str) -> str:
        return os.path.join(self.out_dir, "runs", key)

    def _result(self, key: str) -> dict | None:
        path = os.path.join(self._dir(key), "result.json")
        if not storage.exists(path):
            return None
        return json.loads(storage.read_bytes(path))

    def _score(self, model: StackedGPT) -> Scores:
        model.eval()
        return score_suite(model, self.suite, self.tokenizer, self.device, amp=self.device.type == "cuda")

    def _save_units(self, key: str, scores: Scores, i: int) -> None:
        """The bits of every scoring unit of proxy i, for paired evaluation-noise estimates."""
        path = os.path.join(self._dir(key), f"units-{self.suite_key}.npz")
        arrays = {f"bits_{n}": b[i] for n, b in scores.unit_bits.items()}
        arrays.update({f"bytes_{n}": b for n, b in scores.unit_bytes.items()})
        with atomic_open(path, "wb") as fh:
            np.savez(fh, **arrays)

    def units(self, run: Run) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(bits per unit, bytes per unit) of each eval set for a finished run."""
        key = run_key(run, self.pool, self.tokenizer, self.config, self.settings)
        with storage.open(os.path.join(self._dir(key), f"units-{self.suite_key}.npz"), "rb") as fh, np.load(fh) as z:
            names = [es.name for es in self.suite]
            return {n: z[f"bits_{n}"] for n in names}, {n: z[f"bytes_{n}"] for n in names}

    def run(self, runs: list[Run]) -> list[dict]:
        keys = [run_key(r, self.pool, self.tokenizer, self.config, self.settings) for r in runs]
        todo, rescore = [], []
        for r, k in zip(runs, keys):
            res = self._result(k)
            if res is None:
                todo.append((r, k))
            elif self.suite_key not in res["evals"] or not storage.exists(
                    os.path.join(self._dir(k), f"units-{self.suite_key}.npz")):
                rescore.append((r, k))
        if rescore:
            self._rescore(list(dict.fromkeys(rescore)))
        g = max(1, self.settings.group_size)
        unique = list(dict.fromkeys(todo))
        for start in range(0, len(unique), g):
            group = unique[start : start + g]
            self.log(f"[swarm] training proxies {start + 1}-{start + len(group)} of {len(unique)} "
                     f"({len(runs) - len(unique)} cached) on {self.device.type}")
            self._train(group)
        return [self._row(r, k) for r, k in zip(runs, keys)]

    def _train(self, group: list[tuple[Run, str]]) -> None:
        weights = [self.pool.vector(r.weights()) for r, _ in group]
        seeds = [r.seed for r, _ in group]
        fixed = self.device.type == "cuda" and self.settings.compile  # one stack size: one compilation
        result = train_group(self.pool, weights, seeds, self.config, self.settings, self.device,
                             stack=max(1, self.settings.group_size) if fixed else 0)
        t0 = time.perf_counter()
        scores = self._score(result.model)
        eval_s = time.perf_counter() - t0
        for i, (r, k) in enumerate(group):
            d = self._dir(k)
            storage.makedirs(d)
            with atomic_open(os.path.join(d, "weights.pt"), "wb") as fh:
                torch.save(result.model.extract(i), fh)
            self._save_units(k, scores, i)
            write_json(os.path.join(d, "result.json"), indent=1, body={
                "mixture": r.weights(), "seed": r.seed, "tokens": result.tokens_per_proxy,
                "wall_s": round(result.wall_s / len(group), 3), "group_size": len(group),
                "group_wall_s": round(result.wall_s, 3), "eval_s": round(eval_s, 3),
                "device": self.device.type, "final_train_loss": result.final_loss[i],
                "evals": {self.suite_key: scores.bpb[i]},
            })
        self.trained += len(group)

    def _rescore(self, runs: list[tuple[Run, str]]) -> None:
        """Evaluate saved weights on a changed eval suite, without training."""
        g = max(1, self.settings.group_size)
        for start in range(0, len(runs), g):
            group = runs[start : start + g]
            model = StackedGPT(self.config, len(group)).to(self.device)
            for i, (_, k) in enumerate(group):
                with storage.open(os.path.join(self._dir(k), "weights.pt"), "rb") as fh:
                    model.load_one(i, torch.load(fh, weights_only=True))
            scores = self._score(model)
            for i, (_, k) in enumerate(group):
                self._save_units(k, scores, i)
                res = self._result(k)
                res["evals"][self.suite_key] = scores.bpb[i]
                write_json(os.path.join(self._dir(k), "result.json"), res, indent=1)
            self.rescored += len(group)

    def _row(self, run: Run, key: str) -> dict:
        res = self._result(key)
        bpb = res["evals"][self.suite_key]
        row = {"run_key": key, "mixture": json.dumps(res["mixture"], sort_keys=True), "seed": run.seed}
        row.update({f"w_{n}": w for n, w in run.mixture})
        row.update(tokens=res["tokens"], wall_s=res["wall_s"], device=res["device"])
        row.update({f"bpb_{es.name}": bpb[es.name] for es in self.suite})
        row["objective"] = objective(bpb, self.suite)
        return row


def write_swarm(rows: list[dict], path: str) -> None:
    with arrow_output(path) as target:
        pq.write_table(pa.Table.from_pylist(rows), target, compression="zstd")


def _replicates(rows: list[dict], name: str) -> dict[str, dict[int, float]]:
    by_mix: dict[str, dict[int, float]] = {}
    for r in rows:
        by_mix.setdefault(r["mixture"], {})[int(r["seed"])] = float(r[name])
    return by_mix


def paired_noise(rows: list[dict], name: str) -> tuple[float, int]:
    """Residual sum of squares and degrees of freedom of `name` once each mixture's mean and each seed's common
    shift are taken out (a two-way layout of mixtures trained on the same seeds). With common random numbers a
    seed moves every mixture trained with it alike; what is left is the noise that can reorder mixtures."""
    groups: dict[tuple[int, ...], list[list[float]]] = {}
    for by_seed in _replicates(rows, name).values():
        if len(by_seed) > 1:
            seeds = tuple(sorted(by_seed))
            groups.setdefault(seeds, []).append([by_seed[s] for s in seeds])
    ss, df = 0.0, 0
    for table in groups.values():
        if len(table) < 2:
            continue
        y = np.array(table)
        resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
        ss += float((resid**2).sum())
        df += (y.shape[0] - 1) * (y.shape[1] - 1)
    return ss, df


def noise_floor(blocks: list[list[dict]], suite: list[EvalSet]) -> dict[str, dict[str, float | None]]:
    """Per eval set and for the objective, the signal against the noise of a swarm.

    `blocks` are sets of rows trained separately (the swarm, the confirmation); the first is the swarm.
    - across_mixtures_sd: spread across the swarm's mixtures at its main seed (the signal);
    - noise_sd: spread of one mixture across seeds after the seed's common shift is removed, pooled over blocks
      (the noise that matters when mixtures are compared at one seed);
    - seed_sd: the raw spread of one mixture across seeds, shift included (mean over the mixtures with replicates).
    """
    out: dict[str, dict[str, float | None]] = {}
    swarm = blocks[0]
    counts: dict[int, int] = {}
    for r in swarm:
        counts[int(r["seed"])] = counts.get(int(r["seed"]), 0) + 1
    main = max(counts, key=lambda k: (counts[k], -k))  # the seed most of the swarm was trained with
    for name in [f"bpb_{es.name}" for es in suite] + ["objective"]:
        seed_sds = [float(np.std(list(v.values()), ddof=1)) for block in blocks
                    for v in _replicates(block, name).values() if len(v) > 1]
        at_main = [v[main] for v in _replicates(swarm, name).values() if main in v]
        ss, df = 0.0, 0
        for block in blocks:
            b_ss, b_df = paired_noise(block, name)
            ss, df = ss + b_ss, df + b_df
        noise = float(np.sqrt(ss / df)) if df else None
        across = float(np.std(at_main, ddof=1)) if len(at_main) > 1 else None
        out[name] = {
            "noise_sd": noise,
            "noise_df": df,
            "seed_sd": float(np.mean(seed_sds)) if seed_sds else None,
            "across_mixtures_sd": across,
            "signal_to_noise": across / noise if across is not None and noise else None,
        }
    return out
