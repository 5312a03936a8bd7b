"""A small GPT, with a model axis: M independent proxies trained at once in one set of stacked tensors.

Every weight has a leading dimension M; a batch has shape [M, B, T], one data stream per proxy. With M = 1 this
is a plain GPT. Proxies never interact: the loss is the sum of the per-proxy losses, AdamW acts elementwise,
gradient clipping is per proxy, and each proxy's initial weights come from its own seed. Tiny models leave a GPU
almost idle one at a time; stacked, dozens train in the time of one.

Pre-norm blocks, causal self-attention through `scaled_dot_product_attention`, a 4x GELU MLP, learned positions,
tied input and output embeddings.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 256
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    context: int = 256

    def as_dict(self) -> dict:
        return asdict(self)


def _stacked(m: int, *shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(m, *shape))


class StackedGPT(nn.Module):
    """M GPTs with identical shapes and separate weights. forward(idx [M,B,T]) -> logits [M,B,T,V]."""

    def __init__(self, config: GPTConfig, n_models: int) -> None:
        super().__init__()
        c, m = config, n_models
        assert c.d_model % c.n_head == 0, "d_model must be a multiple of n_head"
        self.config, self.n_models = c, m
        d = c.d_model
        self.wte = _stacked(m, c.vocab_size, d)
        self.wpe = _stacked(m, c.context, d)
        self.ln1_w, self.ln1_b = _stacked(m, c.n_layer, d), _stacked(m, c.n_layer, d)
        self.ln2_w, self.ln2_b = _stacked(m, c.n_layer, d), _stacked(m, c.n_layer, d)
        self.attn_w, self.attn_b = _stacked(m, c.n_layer, d, 3 * d), _stacked(m, c.n_layer, 3 * d)
        self.proj_w, self.proj_b = _stacked(m, c.n_layer, d, d), _stacked(m, c.n_layer, d)
        self.fc_w, self.fc_b = _stacked(m, c.n_layer, d, 4 * d), _stacked(m, c.n_layer, 4 * d)
        self.out_w, self.out_b = _stacked(m, c.n_layer, 4 * d, d), _stacked(m, c.n_layer, d)
        self.lnf_w, self.lnf_b = _stacked(m, d), _stacked(m, d)

    @torch.no_grad()
    def init_weights(self, seeds: list[int]) -> None:
        """Each proxy's weights from its own seed, so a proxy is the same whatever it is stacked with."""
        assert len(seeds) == self.n_models
        c = self.config
        residual_std = 0.02 / math.sqrt(2 * c.n_layer)
        for i, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(seed)
            for name, p in self.named_parameters():
                if name.endswith("_b"):
                    p[i].zero_()
                elif name.startswith("ln"):
                    p[i].fill_(1.0)
                else:
                    std = residual_std if name in ("proj_w", "out_w") else 0.02
                    p[i].copy_(torch.randn(p[i].shape, generator=g) * std)

    def n_params(self, non_embedding: bool = True) -> int:
        """Parameters of one proxy."""
        total = sum(p[0].numel() for p in self.parameters())
        if non_embedding:
            total -= self.wte[0].numel() + self.wpe[0].numel()
        return total

    @staticmethod
    def _norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # x [M,B,T,D], w and b [M,D]
        return F.layer_norm(x, x.shape[-1:]) * w[:, None, None, :] + b[:, None, None, :]

    @staticmethod
    def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # x [M,B,T,I], w [M,I,O], b [M,O]: one batched matmul for all proxies
        m, bsz, t, i = x.shape
        flat = x.reshape(m, bsz * t, i)
        if torch.compiler.is_compiling():  # the compiler fuses the bias into the next elementwise kernel
            return (torch.bmm(flat, w) + b[:, None, :]).reshape(m, bsz, t, -1)
        return torch.baddbmm(b[:, None, :], flat, w).reshape(m, bsz, t, -1)  # eager: bias added by the GEMM

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        # one embedding table of M x V rows: its backward is a dense scatter, not an indexed accumulate
        m, c = self.n_models, self.config
        rows = torch.arange(m, device=idx.device)[:, None, None] * c.vocab_size
        return F.embedding(idx + rows, self.wte.reshape(m * c.vocab_size, c.d_model))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        m, bsz, t = idx.shape
        c = self.config
        assert m == self.n_models and t <= c.context
        x = self._embed(idx) + self.wpe[:, None, :t, :]
        h, hd = c.n_head, c.d_model // c.n_head
        for layer in range(c.n_layer):
            a = self._norm(x, self.ln1_w[:, layer], self.ln1_b[:, layer])
            qkv = self._linear(a, self.attn_w[:, layer], self.attn_b[:, layer])
            q, k, v = (z.reshape(m * bsz, t, h, hd).transpose(1, 2) for z in qkv.split(c.d_model, dim=-1))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(m, bsz, t, c.d_model)
            x = x + self._linear(y, self.proj_w[:, layer], self.proj_b[:, layer])
            a = self._norm(x, self.ln2_w[:, layer], self.ln2_b[:, layer])
            a = F.gelu(self._linear(a, self.fc_w[:, layer], self.fc_b[:, layer]))
            x = x + self._linear(a, self.out_w[:, layer], self.out_b[:, layer])
        x = self._norm(x, self.lnf_w, self.lnf_b)
        return torch.bmm(x.reshape(m, bsz * t, c.d_model), self.wte.transpose(1, 2)).reshape(m, bsz, t, -1)

    def losses(self, idx: torch.Tensor, targets: torch.Tensor, float_logits: bool = True) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) of each proxy: shape [M].

        float_logits=False keeps bf16 logits under autocast: the softmax still accumulates in float32 and the
        gradient reaching the bf16 output matmul is the same precision, only the per-token loss is rounded."""
        logits = self(idx)
        if float_logits:
            logits = logits.float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        return nll.float().reshape(targets.shape).mean(dim=(1, 2))

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Clip each proxy's gradient to max_norm on its own; returns the norms before clipping [M]."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        norms = torch.sqrt(sum(g.reshape(self.n_models, -1).float().pow(2).sum(dim=1) for g in grads))
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.reshape(-1, *([1] * (g.dim() - 1))).to(g.dtype))
        return norms

    def extract(self, i: int) -> dict[str, torch.Tensor]:
        """The weights of proxy i alone (for the run cache)."""
        return {name: p[i].detach().cpu().clone() for name, p in self.named_parameters()}

    @torch.no_grad()
    def load_one(self, i: int, weights: dict[str, torch.Tensor]) -> None:
        for name, p in self.named_parameters():
            p[i].copy_(weights[name].to(p.device, p.dtype))
