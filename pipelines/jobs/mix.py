"""The mix job: sample mixtures, train the proxy swarm, fit, optimise, confirm, and write mix.yaml + report.html."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import yaml

from mixes.fit import fit_metric
from mixes.optimize import optimise, search
from mixes.report import plot_confirm, plot_fit, plot_response, plot_weights, write_report
from mixes.sampling import epoch_caps, sample_mixtures
from proxies.data import load_pool, tokenize_pool
from proxies.evals import build_suite, paired_eval_se
from proxies.model import GPTConfig
from proxies.swarm import Run, Swarm, make_run, noise_floor, write_swarm
from proxies.tokenizer import load_or_train

from pipelines.runtime import storage
from pipelines.config.swarm import SwarmConfig
from pipelines.runtime.files import atomic_open, write_json


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _matrix(rows: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[r[f"w_{n}"] for n in names] for r in rows])


def paired_gain(swarm: Swarm, suite: list, chosen_runs: list[Run], other_runs: list[Run], chosen: list[float],
                other: list[float], label: str) -> dict[str, Any]:
    """Chosen against another mixture, seed by seed (both trained with the same seeds and data order).

    gain = other - chosen per seed (bits per byte; positive: the chosen mixture is better). train_sd is the sd of
    the per-seed gains; eval_se the standard error of the gain from the finite eval sample, on the same units.
    The verdict says "better" or "worse" only when the mean gain is more than twice their combined sd.
    """
    gains = [o - c for c, o in zip(chosen, other)]
    n = len(gains)
    mean = float(np.mean(gains))
    train_sd = float(np.std(gains, ddof=1)) if n > 1 else None
    eval_ses = []
    for a, b in zip(chosen_runs, other_runs):
        bits_a, unit_bytes = swarm.units(a)
        bits_b, _ = swarm.units(b)
        eval_ses.append(paired_eval_se(bits_a, bits_b, unit_bytes, suite))
    eval_se = float(np.mean(eval_ses))
    out: dict[str, Any] = {"against": label, "seeds": n, "per_seed": [round(g, 6) for g in gains], "gain": mean,
                           "train_sd": train_sd, "eval_se": eval_se}
    if train_sd is None:
        out.update(sd=None, ratio=None,
                   verdict=f"not distinguishable from the {label}: one seed (set mix.confirm_runs to 2 or more)")
        return out
    sd = float(np.hypot(train_sd, eval_se))
    out.update(sd=sd, ratio=abs(mean) / sd if sd > 0 else None)
    spread = f"{abs(mean):.4f} ± {sd:.4f} bits per byte over {n} seeds"
    if mean > 2 * sd:
        out["verdict"] = f"better than the {label} by {spread}"
    elif mean < -2 * sd:
        out["verdict"] = f"worse than the {label} by {spread}"
    else:
        out["verdict"] = f"not distinguishable from the {label} ({mean:+.4f} ± {sd:.4f} bits per byte over {n} seeds)"
    return out


def noise_split(swarm: Swarm, suite: list, swarm_runs: list[Run], floor: dict[str, Any]) -> dict[str, Any]:
    """How the noise of a difference between two swarm mixtures splits between training and evaluation.

    training: sqrt(2) x the paired noise sd of one measurement; evaluation: the median standard error, from the
    finite eval sample, of each swarm mixture's difference to the first (both at the swarm's seed)."""
    ref_bits, unit_bytes = swarm.units(swarm_runs[0])
    ses = [paired_eval_se(swarm.units(r)[0], ref_bits, unit_bytes, suite) for r in swarm_runs[1:]]
    eval_se = float(np.median(ses)) if ses else 0.0
    train = float(np.sqrt(2) * floor["noise_sd"]) if floor["noise_sd"] is not None else None
    out: dict[str, Any] = {"training_sd_of_difference": train, "eval_se_of_difference": eval_se,
                           "eval_units": {es.name: int(len(unit_bytes[es.name])) for es in suite},
                           "eval_bytes": {es.name: int(unit_bytes[es.name].sum()) for es in suite}}
    if train is not None:
        out["eval_share_of_variance"] = eval_se**2 / (eval_se**2 + train**2) if (eval_se or train) else 0.0
    return out


def run_mix(cfg: SwarmConfig) -> dict[str, Any]:
    ms = cfg.mix
    pool = load_pool(cfg.pool, cfg.domain_column, cfg.heldout_fraction, list(cfg.domains) or None,
                     sample_bytes=cfg.sample_bytes, heldout_bytes=cfg.eval_max_bytes)
    tokenizer = load_or_train(cfg.tokenizer.kind, cfg.tokenizer.vocab_size, cfg.output,
                              [t for d in pool.domains for t in d.train_texts])
    tokenize_pool(pool, tokenizer, os.path.join(cfg.output, ".tokens"))
    suite = build_suite(list(cfg.eval_sets), cfg.base_dir, pool, cfg.eval_max_bytes)
    names = pool.names
    k = len(names)
    tokens = np.array([d.total_tokens for d in pool.domains], dtype=float)  # the whole domains, not the sample
    prior = tokens / tokens.sum()
    caps = epoch_caps(tokens, ms.budget_tokens, ms.max_epochs)
    rng = np.random.default_rng(ms.seed)

    # 1. the swarm: sampled mixtures (and the prior and uniform ones where the caps allow them)
    n = ms.swarm_size or 3 * (k + 1)
    conc = (ms.min_concentration, ms.max_concentration)
    sampled = sample_mixtures(prior, n, caps, rng, ms.exponent, conc, ms.min_weight)
    uniform = np.full(k, 1.0 / k)
    extra = [w for w in (prior, uniform) if np.all(w <= caps + 1e-12)]
    mixtures = [*extra, *sampled]
    base_seed = cfg.seeds[0]
    runs = [make_run(pool, dict(zip(names, w)), base_seed) for w in mixtures]
    for i in range(min(ms.noise_mixtures, len(sampled))):
        runs += [make_run(pool, dict(zip(names, sampled[i])), base_seed + 1 + s) for s in range(ms.noise_seeds)]
    model_cfg = GPTConfig(vocab_size=tokenizer.vocab_size, **cfg.proxy.model_dump())
    swarm = Swarm(pool, suite, tokenizer, model_cfg, cfg.train, cfg.output, log=_log)
    _log(f"[mix] swarm of {len(runs)} proxy runs over {k} domains ({len(sampled)} sampled mixtures)")
    rows = swarm.run(runs)
    storage.makedirs(cfg.output)
    write_swarm(rows, os.path.join(cfg.output, "swarm.parquet"))

    # 2. fit each eval set and the objective on [w, log w]; held-out metrics from grouped folds
    _log("[mix] fitting")
    w_all = _matrix(rows, names)
    groups = np.array([r["mixture"] for r in rows])
    fits = {es.name: fit_metric(w_all, np.array([r[f"bpb_{es.name}"] for r in rows]), groups) for es in suite}
    obj_fit = fit_metric(w_all, np.array([r["objective"] for r in rows]), groups)
    total_weight = sum(es.weight for es in suite)

    def predict(w: np.ndarray) -> np.ndarray:
        return sum(es.weight * fits[es.name].model.predict(w) for es in suite) / total_weight

    def value(w: np.ndarray) -> float:
        return float(predict(w[None])[0])

    def grad(w: np.ndarray) -> np.ndarray:
        return sum(es.weight * fits[es.name].model.gradient(w) for es in suite) / total_weight

    # 3. optimise inside the caps and the region the swarm covered
    _log("[mix] optimising")
    hi = np.minimum(caps, w_all.max(axis=0))
    if hi.sum() < 1.0:
        hi = caps
    lo = np.zeros(k)
    order = np.argsort([r["objective"] for r in rows])
    starts = [prior, uniform] + [w_all[i] for i in order[:3]]
    chosen = optimise(value, grad, prior, lo, hi, ms.kl_weight, starts)
    candidates = sample_mixtures(prior, ms.search_samples, np.minimum(caps, np.maximum(hi, 1e-9)) if hi.sum() >= 1
                                 else caps, np.random.default_rng(ms.seed + 1), ms.exponent, conc, ms.min_weight)
    searched = search(predict, candidates)

    # 4. confirm: the chosen, prior and uniform mixtures, trained with the same fresh seeds (paired)
    _log("[mix] confirming")
    confirm_mixes = {"chosen": chosen, "prior": prior, "uniform": uniform}
    seeds = [base_seed + 1000 + s for s in range(ms.confirm_runs)]
    by_label = {label: [make_run(pool, dict(zip(names, w)), s) for s in seeds] for label, w in confirm_mixes.items()}
    confirm_rows = swarm.run([r for runs_ in by_label.values() for r in runs_])
    write_swarm(confirm_rows, os.path.join(cfg.output, "confirm.parquet"))
    confirm: dict[str, dict[str, Any]] = {}
    for i, (label, w) in enumerate(confirm_mixes.items()):
        got = confirm_rows[i * len(seeds) : (i + 1) * len(seeds)]
        measured = [r["objective"] for r in got]
        confirm[label] = {
            "predicted": value(w),
            "measured": float(np.mean(measured)),
            "measured_sd": float(np.std(measured, ddof=1)) if len(measured) > 1 else 0.0,
            "per_seed": measured,
            "per_set": {es.name: {"predicted": float(fits[es.name].model.predict(w[None])[0]),
                                  "measured": float(np.mean([r[f"bpb_{es.name}"] for r in got]))} for es in suite},
        }
    paired = {other: paired_gain(swarm, suite, by_label["chosen"], by_label[other], confirm["chosen"]["per_seed"],
                                 confirm[other]["per_seed"], other) for other in ("prior", "uniform")}

    # 5. outputs
    nf = noise_floor([rows, confirm_rows], suite)
    noise = noise_split(swarm, suite, runs[: len(mixtures)], nf["objective"])
    summary = {
        "domains": names,
        "eval_sets": [es.name for es in suite],
        "weights": {n: round(float(x), 6) for n, x in zip(names, chosen)},
        "prior": {n: round(float(x), 6) for n, x in zip(names, prior)},
        "epochs": {n: round(float(x * ms.budget_tokens / t), 4) for n, x, t in zip(names, chosen, tokens)},
        "epoch_caps": {n: round(float(c), 6) for n, c in zip(names, caps)},
        "budget_tokens": ms.budget_tokens,
        "max_epochs": ms.max_epochs,
        "swarm_runs": len(rows),
        "data_manifest": pool.manifest_hash,
        "sample": {d.name: d.seen() for d in pool.domains},
        "fit": {**{es.name: fits[es.name].metrics for es in suite}, "objective": obj_fit.metrics},
        "baseline": {**{es.name: fits[es.name].baseline_metrics for es in suite}, "objective": obj_fit.baseline_metrics},
        "noise_floor": {k2.replace("bpb_", ""): v for k2, v in nf.items()},
        "noise": noise,
        "confirm": confirm,
        "paired": paired,
        "gain_over_prior": paired["prior"]["gain"],
        "search": {"samples": len(candidates), "predicted": value(searched),
                   "weights": {n: round(float(x), 6) for n, x in zip(names, searched)},
                   "l1_to_chosen": float(np.abs(searched - chosen).sum())},
    }
    mix_file = {
        "weights": summary["weights"],
        "epochs_at_budget": summary["epochs"],
        "budget_tokens": ms.budget_tokens,
        "domain_column": cfg.domain_column,
        "heldout_fraction": cfg.heldout_fraction,
        "predicted_objective": round(confirm["chosen"]["predicted"], 6),
        "confirmed_objective": round(confirm["chosen"]["measured"], 6),
        "prior_objective": round(confirm["prior"]["measured"], 6),
        "eval_suite": [{k2: v for k2, v in es.items()} for es in cfg.eval_sets],
        "data_manifest": pool.manifest_hash,
        "pool": storage.relpath(cfg.pool, cfg.output),
        "swarm_size": len(rows),
        "heldout_spearman_objective": obj_fit.metrics["spearman"],
        "verdict": paired["prior"]["verdict"],
    }
    with atomic_open(os.path.join(cfg.output, "mix.yaml")) as fh:
        yaml.safe_dump(mix_file, fh, sort_keys=False)
    write_json(os.path.join(cfg.output, "mix_summary.json"), summary)

    y = np.array([r["objective"] for r in rows])
    images = [("fit_objective.png", f"objective: measured against held-out prediction (Spearman "
                                    f"{obj_fit.metrics['spearman']})"),
              ("weights.png", "chosen weights against the prior, with epoch caps"),
              ("confirm.png", "confirmation: predicted against measured"),
              ("response.png", "predicted objective as one domain's weight moves")]
    plot_fit(os.path.join(cfg.output, images[0][0]), y, obj_fit.heldout_pred, images[0][1])
    for es in suite:
        name = f"fit_{es.name}.png"
        yy = np.array([r[f"bpb_{es.name}"] for r in rows])
        plot_fit(os.path.join(cfg.output, name), yy, fits[es.name].heldout_pred,
                 f"{es.name}: Spearman {fits[es.name].metrics['spearman']}")
        images.append((name, f"eval set {es.name}: measured against held-out prediction"))
    plot_weights(os.path.join(cfg.output, "weights.png"), names, prior, chosen, caps)
    plot_confirm(os.path.join(cfg.output, "confirm.png"), confirm)
    plot_response(os.path.join(cfg.output, "response.png"), names, chosen, np.maximum(hi, chosen), predict)
    write_report(cfg.output, summary, images)
    return summary


def mix_table(summary: dict[str, Any]) -> str:
    lines = [f"{'domain':<12}{'prior':>8}{'chosen':>8}{'epochs':>8}"]
    for n in summary["domains"]:
        lines.append(f"{n:<12}{summary['prior'][n]:>8.3f}{summary['weights'][n]:>8.3f}{summary['epochs'][n]:>8.2f}")
    c, nf, ns = summary["confirm"], summary["noise_floor"]["objective"], summary["noise"]
    lines.append(f"\nheld-out fit of the objective: Spearman {summary['fit']['objective']['spearman']}, "
                 f"R² {summary['fit']['objective']['r2']} (linear baseline Spearman "
                 f"{summary['baseline']['objective']['spearman']})")
    if nf["noise_sd"] is not None:
        lines.append(f"signal and noise of the objective: across mixtures sd {nf['across_mixtures_sd']:.4f}, "
                     f"paired seed noise sd {nf['noise_sd']:.4f} ({nf['noise_df']} df; "
                     f"signal/noise {nf['signal_to_noise']:.1f}), raw seed sd {nf['seed_sd'] or 0:.4f}")
        lines.append(f"noise of a difference between two mixtures: training {ns['training_sd_of_difference']:.4f}, "
                     f"evaluation {ns['eval_se_of_difference']:.4f} bits per byte")
    for label in ("chosen", "prior", "uniform"):
        lines.append(f"{label:<8} predicted {c[label]['predicted']:.4f}  measured {c[label]['measured']:.4f}"
                     f" ± {c[label]['measured_sd']:.4f}")
    for other in ("prior", "uniform"):
        p = summary["paired"][other]
        lines.append(f"chosen vs {other:<8} per-seed gains {p['per_seed']}: {p['verdict']}")
    return "\n".join(lines) + "\n" + json.dumps({"search_l1_to_chosen": round(summary["search"]["l1_to_chosen"], 3)})
