"""Read the token files `refinery shards` writes: documents, or fixed windows for a trainer (a PyTorch Dataset)."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import torch


def _dtype(folder: str) -> np.dtype:
    with open(os.path.join(folder, "manifest.json")) as fh:
        return np.dtype(json.load(fh)["token_dtype"])


def documents(folder: str, shard: str) -> list[np.ndarray]:
    """The token ids of every document of one shard, in shard order, without the end-of-text token."""
    dtype = _dtype(folder)
    tokens = np.fromfile(os.path.join(folder, "tokens", shard + ".bin"), dtype=dtype)
    starts = np.fromfile(os.path.join(folder, "tokens", shard + ".idx"), dtype=np.int64)
    return [tokens[a : b - 1] for a, b in zip(starts[:-1], starts[1:])]


class TokenWindows(torch.utils.data.Dataset):
    """Non-overlapping windows of context+1 tokens over the memory-mapped token files of a shards folder."""

    def __init__(self, folder: str, context: int) -> None:
        dtype = _dtype(folder)
        self.arrays = [np.memmap(p, dtype=dtype, mode="r") for p in sorted(glob.glob(os.path.join(folder, "tokens", "*.bin")))]
        self.context = context
        self.counts = [len(a) // (context + 1) for a in self.arrays]
        self.offsets = np.cumsum([0] + self.counts)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        shard = int(np.searchsorted(self.offsets, i, side="right") - 1)
        start = (i - self.offsets[shard]) * (self.context + 1)
        w = torch.from_numpy(self.arrays[shard][start : start + self.context + 1].astype(np.int64))
        return w[:-1], w[1:]
