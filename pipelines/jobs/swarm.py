"""The swarm job: train proxies on mixtures of a curated pool and score them on the target eval suite."""
from __future__ import annotations

import json
import os
from typing import Any

from proxies.data import load_pool, tokenize_pool
from proxies.evals import build_suite
from proxies.model import GPTConfig
from proxies.swarm import Run, Swarm, make_run, noise_floor, write_swarm
from proxies.tokenizer import load_or_train

from pipelines.config.swarm import SwarmConfig
from pipelines.runtime.files import write_json


def expand_mixtures(specs: tuple[Any, ...], names: list[str], prior: list[float]) -> list[dict[str, float]]:
    """Named mixtures to weights: natural (the pool's byte shares), uniform, one-hot (one per domain)."""
    out: list[dict[str, float]] = []
    for spec in specs:
        if spec == "natural":
            out.append(dict(zip(names, prior)))
        elif spec == "uniform":
            out.append({n: 1.0 for n in names})
        elif spec == "one-hot":
            out.extend({n: 1.0} for n in names)
        else:
            out.append(dict(spec))
    return out


def run_swarm(cfg: SwarmConfig) -> dict[str, Any]:
    pool = load_pool(cfg.pool, cfg.domain_column, cfg.heldout_fraction, list(cfg.domains) or None,
                     sample_bytes=cfg.sample_bytes, heldout_bytes=cfg.eval_max_bytes)
    tokenizer = load_or_train(cfg.tokenizer.kind, cfg.tokenizer.vocab_size, cfg.output,
                              [t for d in pool.domains for t in d.train_texts])
    tokenize_pool(pool, tokenizer, os.path.join(cfg.output, ".tokens"))
    suite = build_suite(list(cfg.eval_sets), cfg.base_dir, pool, cfg.eval_max_bytes)
    model_cfg = GPTConfig(vocab_size=tokenizer.vocab_size, **cfg.proxy.model_dump())
    swarm = Swarm(pool, suite, tokenizer, model_cfg, cfg.train, cfg.output)
    mixtures = expand_mixtures(cfg.mixtures, pool.names, pool.prior().tolist())
    runs: list[Run] = [make_run(pool, m, seed) for m in mixtures for seed in cfg.seeds]
    rows = swarm.run(runs)
    write_swarm(rows, os.path.join(cfg.output, "swarm.parquet"))
    summary = {
        "domains": pool.names,
        "prior": dict(zip(pool.names, pool.prior().tolist())),
        "data_manifest": pool.manifest_hash,
        "sample": {d.name: d.seen() for d in pool.domains},
        "tokenizer": tokenizer.describe(),
        "model": model_cfg.as_dict(),
        "non_embedding_params": _params(model_cfg),
        "runs": len(rows),
        "trained_now": swarm.trained,
        "rescored_now": swarm.rescored,
        "noise_floor": noise_floor([rows], suite),
        "eval_sets": {es.name: {"kind": es.kind, "weight": es.weight,
                                "documents": len(es.texts) or len(es.items)} for es in suite},
    }
    write_json(os.path.join(cfg.output, "swarm_summary.json"), summary)
    return {"rows": rows, "summary": summary}


def _params(config: GPTConfig) -> int:
    from proxies.model import StackedGPT

    return StackedGPT(config, 1).n_params()


def swarm_table(rows: list[dict], summary: dict) -> str:
    sets = [k for k in rows[0] if k.startswith("bpb_")]
    head = f"{'mixture':<44}{'seed':>5}" + "".join(f"{s[4:]:>12}" for s in sets) + f"{'objective':>11}"
    lines = [head]
    for r in rows:
        mix = ", ".join(f"{k}={v:.2f}" for k, v in json.loads(r["mixture"]).items() if v > 0.005)
        lines.append(f"{mix[:43]:<44}{r['seed']:>5}" + "".join(f"{r[s]:>12.4f}" for s in sets)
                     + f"{r['objective']:>11.4f}")
    nf = summary["noise_floor"]["objective"]
    if nf["noise_sd"] is not None:
        lines.append(f"\nnoise floor of the objective: paired seed noise sd {nf['noise_sd']:.4f} "
                     f"({nf['noise_df']} df), raw seed sd {nf['seed_sd'] or 0:.4f}; "
                     f"sd across mixtures {nf['across_mixtures_sd'] or 0:.4f}")
    return "\n".join(lines)
