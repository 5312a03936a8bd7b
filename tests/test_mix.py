"""Choosing the mix: sampling under caps, the ridge fit, the optimiser, and the mix job end to end on real text."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from mixes.fit import EPS, Ridge, fit_metric, spearman
from mixes.optimize import kl, optimise, project, search
from mixes.sampling import epoch_caps, sample_mixtures
from pipelines.config.swarm import parse_swarm_config
from pipelines.jobs.mix import run_mix


def test_sampling_respects_caps_and_centres_on_the_prior():
    prior = np.array([0.6, 0.3, 0.08, 0.02])
    tokens = prior * 1e6
    caps = epoch_caps(tokens, budget_tokens=2e6, max_epochs=3)  # the smallest domain may take at most 3%
    w = sample_mixtures(prior, 400, caps, np.random.default_rng(0))
    assert w.shape == (400, 4)
    assert np.allclose(w.sum(axis=1), 1) and (w <= caps + 1e-12).all()
    assert ((w == 0) | (w >= 0.01)).all()  # tiny weights are zeroed
    assert np.argsort(w.mean(axis=0))[-1] == 0  # the largest domain stays the largest on average
    with pytest.raises(ValueError, match="epoch caps"):
        sample_mixtures(prior, 5, epoch_caps(tokens, 1e9, 1), np.random.default_rng(0))


def planted(w: np.ndarray) -> np.ndarray:
    """A known log-linear response; its optimum is inside the simplex (about 0.25, 0.5, 0.25, 0)."""
    a = np.array([0.25, 0.5, 0.25, 0.0])
    return 3.0 - (a * np.log(w + EPS)).sum(axis=1) * 0.3 + 0.1 * w[:, 3]


def test_fit_and_optimiser_recover_a_planted_optimum():
    rng = np.random.default_rng(1)
    prior = np.array([0.4, 0.3, 0.2, 0.1])
    caps = np.ones(4)
    w = sample_mixtures(prior, 60, caps, rng)
    y = planted(w) + rng.normal(0, 0.005, len(w))
    report = fit_metric(w, y, np.arange(len(w)).astype(str))
    assert report.metrics["spearman"] > 0.95 and report.metrics["r2"] > 0.9
    assert report.metrics["spearman"] >= report.baseline_metrics["spearman"]
    model = report.model
    chosen = optimise(lambda v: float(model.predict(v[None])[0]), model.gradient, prior, np.zeros(4), caps,
                      kl_weight=0.0, starts=[prior, np.full(4, 0.25)])
    truth = optimise(lambda v: float(planted(v[None])[0]),
                     lambda v: -0.3 * np.array([0.25, 0.5, 0.25, 0.0]) / (v + EPS) + np.array([0, 0, 0, 0.1]),
                     prior, np.zeros(4), caps, 0.0, [prior])
    assert np.abs(chosen - truth).sum() < 0.15, (chosen, truth)
    assert chosen[1] == max(chosen)
    # caps are respected: cap the best domain at 0.3
    capped = optimise(lambda v: float(model.predict(v[None])[0]), model.gradient, prior, np.zeros(4),
                      np.array([1, 0.3, 1, 1]), 0.0, [prior])
    assert capped[1] <= 0.3 + 1e-9 and abs(capped.sum() - 1) < 1e-9
    # the KL penalty pulls towards the prior
    pulled = optimise(lambda v: float(model.predict(v[None])[0]), model.gradient, prior, np.zeros(4), caps, 5.0,
                      [prior])
    assert kl(pulled, prior) < kl(chosen, prior)
    # the RegMix-style search agrees roughly
    found = search(lambda v: model.predict(v), sample_mixtures(prior, 5000, caps, np.random.default_rng(2)), top=50)
    assert np.abs(found - chosen).sum() < 0.35


def test_projection_and_ridge_gradient():
    p = project(np.array([0.9, 0.5, -0.2]), np.zeros(3), np.array([0.6, 1, 1]))
    assert abs(p.sum() - 1) < 1e-9 and p[0] <= 0.6 + 1e-9 and (p >= 0).all()
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), 30)
    m = Ridge.fit(w, planted(np.hstack([w, np.zeros((30, 1))])), 0.01)
    x = np.array([0.5, 0.3, 0.2])
    num = np.array([(m.predict((x + h)[None]) - m.predict((x - h)[None]))[0] / 2e-6 for h in np.eye(3) * 1e-6])
    assert np.allclose(num, m.gradient(x), rtol=1e-3, atol=1e-3)
    assert spearman(np.array([1, 2, 3.0]), np.array([10, 20, 30.0])) == pytest.approx(1.0)


def test_mix_end_to_end_favours_the_target_domain(pool3, tmp_path):
    raw = {
        "pool": str(pool3), "output": str(tmp_path / "mix"), "heldout_fraction": 0.15,
        "proxy": {"n_layer": 2, "n_head": 2, "d_model": 32, "context": 64},
        "train": {"steps": 150, "batch": 16, "lr": 0.003, "warmup": 15, "group_size": 12, "threads": 2},
        "eval": {"max_bytes": 20000, "sets": [{"name": "code", "domain": "code"}]},
        "mix": {"budget_tokens": 2.0e6, "max_epochs": 4, "swarm_size": 12, "noise_mixtures": 1, "noise_seeds": 2,
                "confirm_runs": 2, "kl_weight": 0.01, "search_samples": 2000},
    }
    summary = run_mix(parse_swarm_config(raw, str(tmp_path)))
    out = tmp_path / "mix"
    mix = yaml.safe_load((out / "mix.yaml").read_text())
    assert abs(sum(mix["weights"].values()) - 1) < 1e-6
    assert mix["weights"]["code"] > summary["prior"]["code"]
    for name, epochs in mix["epochs_at_budget"].items():
        assert epochs <= 4 + 1e-6
    c = summary["confirm"]
    assert c["chosen"]["measured"] < c["prior"]["measured"]
    # paired confirmation: the same seeds for chosen, prior and uniform; the gain is far beyond its noise
    paired = summary["paired"]["prior"]
    assert paired["seeds"] == 2 and len(paired["per_seed"]) == 2
    assert paired["per_seed"] == pytest.approx([p - ch for ch, p in zip(c["chosen"]["per_seed"],
                                                                         c["prior"]["per_seed"])], abs=1e-5)
    assert paired["gain"] > 2 * paired["sd"] > 0 and paired["eval_se"] > 0
    assert paired["verdict"].startswith("better than the prior by")
    assert mix["verdict"] == paired["verdict"]
    nf = summary["noise_floor"]["objective"]
    assert nf["noise_df"] >= 2 and nf["noise_sd"] < nf["across_mixtures_sd"]
    assert summary["noise"]["eval_units"]["code"] > 100
    assert summary["fit"]["code"]["spearman"] > 0.5
    report = (out / "report.html").read_text()
    assert "Spearman" in report and "Confirmation" in report
    for png in ("fit_objective.png", "weights.png", "confirm.png", "response.png", "fit_code.png"):
        assert (out / png).stat().st_size > 1000
    # a changed eval suite refits without training the swarm again
    raw["eval"]["sets"].append({"name": "wiki", "domain": "wiki", "weight": 0.5})
    again = run_mix(parse_swarm_config(raw, str(tmp_path)))
    assert "wiki" in again["fit"]
    import pyarrow.parquet as pq

    keys = pq.read_table(out / "swarm.parquet", columns=["run_key"]).column("run_key").to_pylist()
    results = [json.loads((out / "runs" / k / "result.json").read_text()) for k in keys]
    assert all(len(r["evals"]) == 2 for r in results)  # the swarm was re-scored, not retrained


class _Units:
    """Stands in for a trained swarm: every run scored on the same 200 units with the same bits."""

    def units(self, run):
        return {"x": np.full(200, 300.0)}, {"x": np.full(200, 100)}


def test_paired_verdicts():
    from pipelines.jobs.mix import paired_gain
    from proxies.evals import EvalSet

    suite = [EvalSet("x", 1.0, "text")]
    runs = [None, None, None]
    better = paired_gain(_Units(), suite, runs, runs, [3.00, 3.01, 2.99], [3.05, 3.07, 3.04], "prior")
    assert better["gain"] == pytest.approx(0.0533, abs=1e-4) and better["eval_se"] == 0.0
    assert better["verdict"].startswith("better than the prior by 0.0533 ± 0.0058 bits per byte over 3 seeds")
    worse = paired_gain(_Units(), suite, runs, runs, [3.05, 3.07, 3.04], [3.00, 3.01, 2.99], "prior")
    assert worse["verdict"].startswith("worse than the prior")
    noisy = paired_gain(_Units(), suite, runs, runs, [3.00, 3.05, 2.99], [3.03, 3.01, 3.02], "uniform")
    assert noisy["verdict"].startswith("not distinguishable from the uniform")
    one = paired_gain(_Units(), suite, runs[:1], runs[:1], [3.0], [3.1], "prior")
    assert one["sd"] is None and "one seed" in one["verdict"]
    same = paired_gain(_Units(), suite, runs, runs, [3.0, 3.0, 3.0], [3.0, 3.0, 3.0], "prior")
    assert same["ratio"] is None and same["verdict"].startswith("not distinguishable")
