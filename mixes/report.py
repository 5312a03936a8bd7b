"""report.html with PNG plots: held-out fit, chosen weights against the prior, confirmation, response curves."""
from __future__ import annotations

import html
import os
from typing import Any, Callable

import numpy as np

from pipelines.runtime.files import atomic_open, save_png


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fit(path: str, y: np.ndarray, pred: np.ndarray, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y, pred, s=18)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax.set_xlabel("measured (bits per byte)")
    ax.set_ylabel("predicted on held-out folds")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_weights(path: str, names: list[str], prior: np.ndarray, chosen: np.ndarray, caps: np.ndarray) -> None:
    plt = _plt()
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5, len(names) * 0.9), 3.6))
    ax.bar(x - 0.2, prior, 0.4, label="prior (token counts)")
    ax.bar(x + 0.2, chosen, 0.4, label="chosen")
    ax.scatter(x, np.minimum(caps, 1.0), marker="_", s=300, color="black", label="epoch cap")
    ax.set_xticks(x, names, rotation=30)
    ax.set_ylabel("weight")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_confirm(path: str, confirm: dict[str, dict[str, Any]]) -> None:
    plt = _plt()
    labels = list(confirm)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    x = np.arange(len(labels))
    ax.bar(x - 0.2, [confirm[k]["predicted"] for k in labels], 0.4, label="predicted")
    ax.bar(x + 0.2, [confirm[k]["measured"] for k in labels], 0.4, yerr=[confirm[k]["measured_sd"] for k in labels],
           label="measured (mean of seeds)")
    ax.set_xticks(x, labels)
    lo = min(min(c["predicted"], c["measured"]) for c in confirm.values())
    hi = max(max(c["predicted"], c["measured"]) for c in confirm.values())
    ax.set_ylim(lo - (hi - lo) * 1.5 - 1e-3, hi + (hi - lo) * 0.5 + 1e-3)
    ax.set_ylabel("objective (bits per byte, lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def plot_response(path: str, names: list[str], chosen: np.ndarray, hi: np.ndarray,
                  predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """Predicted objective as one domain's weight moves, the others keeping their proportions."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, name in enumerate(names):
        xs = np.linspace(0.0, max(hi[i], chosen[i]), 40)
        ws = []
        for x in xs:
            rest = np.delete(chosen, i)
            rest = rest / rest.sum() * (1 - x) if rest.sum() > 0 else np.full(len(rest), (1 - x) / len(rest))
            ws.append(np.insert(rest, i, x))
        ax.plot(xs, predict(np.array(ws)), label=name)
    ax.set_xlabel("weight of the domain")
    ax.set_ylabel("predicted objective")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def write_report(folder: str, summary: dict[str, Any], images: list[tuple[str, str]]) -> str:
    """report.html: the answer first, then the evidence."""
    names = summary["domains"]
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{summary['prior'][n]:.3f}</td><td><b>{summary['weights'][n]:.3f}</b></td>"
        f"<td>{summary['epochs'][n]:.2f}</td></tr>" for n in names)
    fit_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['spearman']}</td><td>{v['pearson']}</td><td>{v['r2']}</td>"
        f"<td>{v['penalty']}</td><td>{summary['baseline'][k]['spearman']}</td><td>{summary['baseline'][k]['r2']}</td>"
        f"<td>{_num(summary['noise_floor'].get(k, {}).get('noise_sd'))}</td></tr>"
        for k, v in summary["fit"].items())
    conf_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{c['predicted']:.4f}</td><td>{c['measured']:.4f} ± {c['measured_sd']:.4f}</td>"
        f"<td>{', '.join(f'{x:.4f}' for x in c['per_seed'])}</td></tr>"
        for k, c in summary["confirm"].items())
    imgs = "".join(f'<figure><img src="{html.escape(src)}"><figcaption>{html.escape(cap)}</figcaption></figure>'
                   for src, cap in images)
    seen_rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{s['documents']:,}</td><td>{s['of_documents']:,}</td><td>{s['bytes']:,}</td>"
        f"<td>{s['of_bytes']:,}</td><td>{s['share']:.2%}</td></tr>" for n, s in summary.get("sample", {}).items())
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>refinery mix report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:8px}}</style></head>
<body><h1>Mixture for {html.escape(', '.join(summary['eval_sets']))}</h1>
<p>Verdict of the paired confirmation: the chosen mixture is <b>{html.escape(summary['paired']['prior']['verdict'])}</b>,
and {html.escape(summary['paired']['uniform']['verdict'])} (chosen, prior and uniform trained with the same seeds;
± is the sd of the per-seed gains with the evaluation's own noise added; a verdict needs the gain above twice it).
Noise of the objective: sd across the swarm's mixtures {_num(summary['noise_floor']['objective']['across_mixtures_sd'])},
paired seed noise sd {_num(summary['noise_floor']['objective']['noise_sd'])}. Swarm: {summary['swarm_runs']} proxy runs; budget
{summary['budget_tokens']:.3g} tokens, at most {summary['max_epochs']} epochs per domain; data manifest
{html.escape(summary['data_manifest'])}.</p>
<h2>Weights</h2><table><tr><th>domain</th><th>prior</th><th>chosen</th><th>epochs at budget</th></tr>{rows}</table>
<h2>What the swarm saw</h2><p>The proxies read a sample of each domain, chosen by a hash of document ids; the prior
and the epoch caps count the whole domain.</p>
<table><tr><th>domain</th><th>documents</th><th>of</th><th>bytes</th><th>of</th><th>share</th></tr>{seen_rows}</table>
<p>RegMix-style search over {summary['search']['samples']} sampled mixtures predicts {summary['search']['predicted']:.4f};
the optimiser's mixture predicts {summary['confirm']['chosen']['predicted']:.4f} (L1 distance between them
{summary['search']['l1_to_chosen']:.3f}).</p>
<h2>Confirmation</h2><table><tr><th>mixture</th><th>predicted</th><th>measured</th><th>per seed</th></tr>{conf_rows}</table>
<h2>Fit on held-out mixtures</h2><table><tr><th>target</th><th>Spearman</th><th>Pearson</th><th>R²</th><th>ridge penalty</th>
<th>linear Spearman</th><th>linear R²</th><th>paired noise sd</th></tr>{fit_rows}</table>
<h2>Plots</h2>{imgs}</body></html>"""
    path = os.path.join(folder, "report.html")
    with atomic_open(path) as fh:
        fh.write(body)
    return path
