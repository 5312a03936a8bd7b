"""The demo mix, today's code and config against an earlier commit's, side by side: CPU time and the figures.

    refinery curate examples/demo.yaml                 # the demo pool, once
    python benchmarks/bench_mix_demo.py --baseline b19b06f

Checks the baseline commit out into a temporary git worktree, runs `refinery mix` with each checkout's own
examples/mix.yaml on the same curated pool (examples/out/curated), one after the other, and prints the CPU
seconds (user + system of the process tree), the wall time, and what each run reports: the across-mixture sd and
the seed noise of the objective, the held-out Spearman of the fit, and the confirmed gain over the prior with its
sd. The baseline's noise is the raw spread across seeds (it had no paired estimate).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_mix(checkout: Path, pool: Path, out: Path) -> dict:
    cfg = (checkout / "examples" / "mix.yaml").read_text()
    cfg = cfg.replace("pool: out/curated", f"pool: {pool}").replace("output: out/mix", f"output: {out}")
    cfg = cfg.replace("tasks: eval/", f"tasks: {checkout / 'examples' / 'eval'}/")
    path = out.parent / f"{out.name}.yaml"
    path.write_text(cfg)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "mix", str(path)], cwd=checkout / "examples", env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads((out / "mix_summary.json").read_text())
    nf = summary["noise_floor"]["objective"]
    paired = summary.get("paired", {}).get("prior")
    if paired:
        gain, sd = paired["gain"], paired["sd"]
    else:  # the baseline: unpaired confirmation
        gain = summary["gain_over_prior"]
        c = summary["confirm"]
        sd = (c["chosen"]["measured_sd"] ** 2 + c["prior"]["measured_sd"] ** 2) ** 0.5
    return {"cpu_s": cpu, "wall_s": wall, "across_sd": nf["across_mixtures_sd"],
            "noise_sd": nf["noise_sd"], "spearman": summary["fit"]["objective"]["spearman"],
            "gain": gain, "gain_sd": sd, "runs": summary["swarm_runs"],
            "verdict": summary.get("paired", {}).get("prior", {}).get("verdict", "(no paired verdict)")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default="b19b06f", help="the commit to compare with")
    ap.add_argument("--pool", default=str(ROOT / "examples" / "out" / "curated"))
    args = ap.parse_args()
    pool = Path(args.pool).resolve()
    if not (pool / "kept").is_dir():
        sys.exit(f"no curated pool at {pool}: run `refinery curate examples/demo.yaml` in examples/ first")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            results = {"baseline": run_mix(base, pool, Path(tmp) / "mix_base"),
                       "today": run_mix(ROOT, pool, Path(tmp) / "mix_today")}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
            shutil.rmtree(base, ignore_errors=True)
    for name, r in results.items():
        print(f"{name:<9} CPU {r['cpu_s']:6.0f} s  wall {r['wall_s']:5.0f} s  proxies {r['runs']:3d}  "
              f"across sd {r['across_sd']:.4f}  noise sd {r['noise_sd']:.4f} (ratio {r['noise_sd'] / r['across_sd']:.2f})  "
              f"Spearman {r['spearman']:.3f}  gain {r['gain']:+.4f} ± {r['gain_sd']:.4f} "
              f"({r['gain'] / r['gain_sd']:.1f} sd)\n          verdict: {r['verdict']}")
    b, t = results["baseline"], results["today"]
    print(f"today / baseline: CPU {t['cpu_s'] / b['cpu_s']:.2f}x, wall {t['wall_s'] / b['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
