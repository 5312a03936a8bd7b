"""GPU utilisation of the stacked proxy: model FLOPs per second against the card's measured bf16 matmul rate.

    python benchmarks/bench_proxy_util.py                     # 4 layers x d=256, context 256, 32 proxies
    python benchmarks/bench_proxy_util.py --proxies 32,64 --batch 32 --steps 30

Variants, side by side in one process on the same data:
  before   the training loop as it was (embedding by advanced indexing, a batch drawn per step, eager)
  eager    train_group today, eager (train.compile: false)
  compile  train_group today with torch.compile of the loss, bf16 logits in the loss (train.compile: true)
  autotune compile with mode max-autotune-no-cudagraphs (matmul templates tuned at compile time)
Timed over --steps steps after a warm-up call, with one synchronisation at the end, as the swarm runs.
FLOPs per token follow the usual count (6 x compute parameters, the tied output matmul included, plus
12 x layers x d_model x context for attention). The peak is an 8192^3 bf16 matmul timed in the same process.
Also checks that compiled and eager losses agree, and that a padded, compiled swarm group trains end to end.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_proxy import demo_pool  # noqa: E402
import proxies.train  # noqa: E402
from proxies.data import MixtureSampler  # noqa: E402
from proxies.model import GPTConfig, StackedGPT  # noqa: E402
from proxies.train import TrainSettings, make_optimizer, train_group  # noqa: E402


class BeforeGPT(StackedGPT):
    """The forward pass as it was before this benchmark: an indexed embedding lookup, bias added after bmm."""

    @staticmethod
    def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m, bsz, t, i = x.shape
        return (torch.bmm(x.reshape(m, bsz * t, i), w) + b[:, None, :]).reshape(m, bsz, t, -1)

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(self.n_models, device=idx.device)[:, None, None]
        return self.wte[rows, idx]


def flops_per_token(c: GPTConfig) -> float:
    n = 12 * c.n_layer * c.d_model**2 + c.vocab_size * c.d_model
    return 6 * n + 12 * c.n_layer * c.d_model * c.context


def matmul_peak() -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 2 * 8192**3 / float(np.median(times))


def time_before(pool, cfg: GPTConfig, k: int, batch: int, steps: int, warm: int) -> float:
    """Seconds per step of the training loop as it was: the indexed embedding, eager, a batch drawn per step."""
    device = torch.device("cuda")
    model = BeforeGPT(cfg, k)
    model.init_weights(list(range(k)))
    model.to(device)
    opt = make_optimizer(model, TrainSettings(), fused=True)
    rng = np.random.default_rng(0)
    samplers = [MixtureSampler(pool, rng.dirichlet(np.ones(3)), i, cfg.context) for i in range(k)]
    stream = torch.from_numpy(samplers[0].stream).to(device)
    window = torch.arange(cfg.context + 1, device=device)
    t0 = 0.0
    for step in range(warm + steps):
        if step == warm:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        starts = np.stack([smp.starts(batch) for smp in samplers])
        data = stream[torch.from_numpy(starts).to(device, non_blocking=True)[..., None] + window]
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            losses = model.losses(data[:, :, :-1], data[:, :, 1:])
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        model.clip_grad_norm_(1.0)
        opt.step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def time_train_group(pool, cfg: GPTConfig, k: int, batch: int, steps: int, warm: int, compile: bool) -> tuple:
    """Seconds per step of train_group itself (a warm-up call first, compilation included there)."""
    rng = np.random.default_rng(0)
    w = [rng.dirichlet(np.ones(3)) for _ in range(k)]
    t0 = time.perf_counter()
    train_group(pool, w, list(range(k)), cfg, TrainSettings(steps=warm, batch=batch, warmup=1, compile=compile),
                torch.device("cuda"))
    first = time.perf_counter() - t0
    r = train_group(pool, w, list(range(k)), cfg, TrainSettings(steps=steps, batch=batch, warmup=2, compile=compile),
                    torch.device("cuda"))
    return r.wall_s / steps, first


def check_quality(pool, cfg: GPTConfig, batch: int) -> str:
    """Eight proxies trained eager (float32 loss) and compiled (bf16 logits in the loss) on the same seeds and
    data, then scored in float32 on the same held-out text: the paired difference of their losses."""
    rng = np.random.default_rng(3)
    w = [rng.dirichlet(np.ones(3)) for _ in range(8)]
    out = {}
    for compile in (False, True):
        r = train_group(pool, w, list(range(8)), cfg, TrainSettings(steps=150, batch=batch, warmup=10,
                                                                    compile=compile), torch.device("cuda"))
        text = torch.from_numpy(pool.domains[2].tokens[-(64 * (cfg.context + 1)):].copy()).cuda()
        x = text.reshape(64, cfg.context + 1).unsqueeze(0).expand(8, -1, -1)
        with torch.no_grad():
            out[compile] = r.model.losses(x[..., :-1], x[..., 1:]).double().cpu().numpy()
    d = out[True] - out[False]
    return (f"quality check (8 proxies, 150 steps, same seeds and data): eager loss {out[False].mean():.4f}, "
            f"compiled {out[True].mean():.4f} nats; paired difference mean {d.mean():+.4f} sd {d.std(ddof=1):.4f}")


def check_losses(cfg: GPTConfig) -> str:
    device = torch.device("cuda")
    model = StackedGPT(cfg, 4)
    model.init_weights([1, 2, 3, 4])
    model.to(device)
    before = BeforeGPT(cfg, 4).to(device)
    before.load_state_dict(model.state_dict())
    x = torch.randint(0, 256, (4, 8, cfg.context + 1), device=device)
    with torch.no_grad():
        ref = before.losses(x[..., :-1], x[..., 1:])
        eager = model.losses(x[..., :-1], x[..., 1:])
        comp = torch.compile(model.losses)(x[..., :-1], x[..., 1:])
    return (f"loss check (float32, 4 proxies): before {ref.tolist()}, max |eager - before| "
            f"{(eager - ref).abs().max().item():.2e}, max |compiled - before| {(comp - ref).abs().max().item():.2e}")


def profile(pool, cfg: GPTConfig, k: int, batch: int) -> str:
    rng = np.random.default_rng(0)
    w = [rng.dirichlet(np.ones(3)) for _ in range(k)]
    s = TrainSettings(steps=10, batch=batch, warmup=1, compile=True)
    train_group(pool, w, list(range(k)), cfg, s, torch.device("cuda"))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        train_group(pool, w, list(range(k)), cfg, s, torch.device("cuda"))
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--proxies", default="32")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--variants", default="before,eager,compile")
    ap.add_argument("--profile", action="store_true", help="the compiled step's costliest kernels")
    ap.add_argument("--quality-check", action="store_true", help="eager against compiled training, same data")
    ap.add_argument("--swarm-check", action="store_true", help="train two padded, compiled groups end to end")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = GPTConfig(256, args.layers, args.heads, args.d_model, args.context)
    pool = demo_pool()
    peak = matmul_peak()
    fpt = flops_per_token(cfg)
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; bf16 matmul peak measured "
          f"{peak / 1e12:.0f} TFLOP/s; model {args.layers} layers x d={args.d_model}, context {args.context}, "
          f"{fpt / 1e6:.1f} MFLOP per token", flush=True)
    print(check_losses(cfg), flush=True)
    if args.profile:
        print(profile(pool, cfg, int(args.proxies.split(",")[0]), args.batch), flush=True)
    rows = []
    for k in (int(x) for x in args.proxies.split(",")):
        base = None
        for name in args.variants.split(","):
            proxies.train.COMPILE_MODE = "max-autotune-no-cudagraphs" if name == "autotune" else "default"
            if name == "before":
                step_s, first_s = time_before(pool, cfg, k, args.batch, args.steps, args.warm), 0.0
            else:
                step_s, first_s = time_train_group(pool, cfg, k, args.batch, args.steps, args.warm,
                                                    name in ("compile", "autotune"))
            tok = k * args.batch * args.context / step_s
            util = tok * fpt / peak
            base = base or step_s
            rows.append(f"K={k:3d} {name:<8} {step_s * 1e3:8.1f} ms/step {tok / 1e6:7.2f}M tok/s "
                        f"{tok * fpt / 1e12:6.0f} TFLOP/s {100 * util:5.1f}% of peak  x{base / step_s:5.2f} "
                        f"(warm-up call {first_s:5.1f} s)")
            print(rows[-1], flush=True)
            torch.cuda.empty_cache()
    if args.quality_check:
        print(check_quality(pool, cfg, args.batch), flush=True)
    if args.swarm_check:
        s = TrainSettings(steps=60, batch=args.batch, warmup=5, compile=True)
        rng = np.random.default_rng(1)
        k = int(args.proxies.split(",")[0])
        for n in (k, k - 3):
            w = [rng.dirichlet(np.ones(3)) for _ in range(n)]
            t0 = time.perf_counter()
            r = train_group(pool, w, list(range(n)), cfg, s, torch.device("cuda"), stack=k)
            print(f"swarm group of {n} padded to {k}: {time.perf_counter() - t0:.1f} s wall, loop {r.wall_s:.1f} s, "
                  f"final losses {np.round(r.final_loss[:3], 3).tolist()}..., proxies kept {r.model.n_models}",
                  flush=True)
    print("\n".join(rows))
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
