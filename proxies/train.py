"""Train a group of proxies at once: one stacked model, one data stream per proxy, on CUDA or the CPU."""
from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from pipelines.config.base import Section

from .data import MixtureSampler, Pool
from .model import GPTConfig, StackedGPT

STARTS_BLOCK = 64  # steps whose batch offsets are drawn and sent to the device at once
COMPILE_MODE = "default"  # torch.compile mode of the training loss on CUDA


class TrainSettings(Section):
    """How each proxy is trained (the `train` section of a swarm or mix config)."""

    steps: int = Field(300, ge=1)
    batch: int = Field(16, ge=1, description="sequences per proxy per step")
    lr: float = Field(3e-3, gt=0)
    warmup: int = Field(30, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, ge=0)
    average_last: float = Field(0.0, description="the proxy is its mean weights over this last fraction of steps")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = Field(True, description="torch.compile of the loss on CUDA (about 2.5x on an H200)")
    group_size: int = Field(8, ge=1, description="proxies trained together in one stacked model")
    threads: int = Field(0, ge=0, description="CPU threads; 0: OMP_NUM_THREADS, else the core count")

    @field_validator("average_last")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"expected a fraction of the steps in [0, 1), got {value}")
        return value

    def as_dict(self) -> dict:
        """What changes a trained proxy (device, grouping and threads do not, up to float rounding)."""
        d = self.model_dump()
        for k in ("device", "compile", "group_size", "threads"):
            d.pop(k)
        if not self.average_last:
            d.pop("average_last")  # keys of runs trained before the setting existed stay valid
        return d


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is cuda but no CUDA device is available")
    return torch.device(name)


def setup_cpu_threads(threads: int) -> None:
    """`threads`, or when 0: OMP_NUM_THREADS where it is set, else the cores this process may run on."""
    if not threads:
        omp = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(omp) if omp.isdigit() and int(omp) > 0 else len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)


def lr_at(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: StackedGPT, s: TrainSettings, fused: bool) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if n.endswith("_w") and not n.startswith("ln") or n == "wte"]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(0.9, 0.95), fused=fused)


@dataclass
class GroupResult:
    model: StackedGPT
    tokens_per_proxy: int
    wall_s: float
    final_loss: list[float]


def train_group(pool: Pool, weights: list[np.ndarray], seeds: list[int], config: GPTConfig, s: TrainSettings,
                device: torch.device, stack: int = 0) -> GroupResult:
    """Train len(weights) proxies together; proxy i sees only its own mixture's stream, from seeds[i].

    stack > len(weights) pads the group with copies of its last proxy (trained, then dropped), so that a compiled
    step sees one stack size only and compiles once."""
    n_real = len(weights)
    if stack > n_real:
        weights = list(weights) + [weights[-1]] * (stack - n_real)
        seeds = list(seeds) + [seeds[-1]] * (stack - n_real)
    m = len(weights)
    model = StackedGPT(config, m)
    model.init_weights(seeds)
    model.to(device)
    cuda = device.type == "cuda"
    opt = make_optimizer(model, s, fused=cuda)
    step_fn = model.losses
    if cuda and s.compile:
        step_fn = torch.compile(functools.partial(model.losses, float_logits=False), mode=COMPILE_MODE)
    samplers = [MixtureSampler(pool, w, seed, config.context) for w, seed in zip(weights, seeds)]
    # the token stream lives on the device; only start offsets travel, a block of steps at a time
    stream = torch.from_numpy(samplers[0].stream.astype(np.int64)).to(device)  # ids stored in 16 or 32 bits
    window = torch.arange(config.context + 1, device=device)
    start = time.perf_counter()
    losses = torch.zeros(m)
    block = torch.zeros(0)
    params = list(model.parameters())
    first_avg = s.steps - max(1, round(s.average_last * s.steps)) if s.average_last > 0 else s.steps
    mean: list[torch.Tensor] = []
    for step in range(s.steps):
        if step % STARTS_BLOCK == 0:
            n = min(STARTS_BLOCK, s.steps - step)
            starts = np.stack([np.stack([smp.starts(s.batch) for smp in samplers]) for _ in range(n)])  # [n, M, B]
            block = torch.from_numpy(starts).to(device, non_blocking=cuda)
        data = stream[block[step % STARTS_BLOCK][..., None] + window]  # [M, B, T+1]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, s)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            losses = step_fn(data[:, :, :-1], data[:, :, 1:])
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        model.clip_grad_norm_(s.grad_clip)
        opt.step()
        if step == first_avg:
            mean = [p.detach().clone() for p in params]
        elif step > first_avg:  # running mean of the weights over the last steps (tail averaging)
            torch._foreach_lerp_(mean, [p.detach() for p in params], 1.0 / (step - first_avg + 1))
    if mean:
        with torch.no_grad():
            torch._foreach_copy_(params, mean)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    if m > n_real:
        model = _first(model, n_real)
    return GroupResult(model, s.steps * s.batch * config.context, wall,
                       losses.detach().float().cpu().tolist()[:n_real])


def _first(model: StackedGPT, n: int) -> StackedGPT:
    """The first n proxies of a stacked model, as a model of their own."""
    out = StackedGPT(model.config, n).to(next(model.parameters()).device)
    with torch.no_grad():
        for (_, src), dst in zip(model.named_parameters(), out.parameters()):
            dst.copy_(src[:n])
    return out
