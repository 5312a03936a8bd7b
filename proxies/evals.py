"""The target eval suite, scored in bits per byte.

A set is held-out text (a pool domain's held-out split, or files of txt, JSONL or Parquet with `text`), scored as
bits per byte of the text, or a task file (JSONL with `context` and `gold`), scored as bits per byte of the gold
continuation given its context. Bits per byte do not depend on the tokenizer.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import Pool
from .model import StackedGPT
from .tokenizer import Tokenizer
from pipelines.runtime import storage
from pipelines.runtime.files import read_texts


@dataclass
class EvalSet:
    name: str
    weight: float
    kind: str  # "text" or "task"
    texts: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{self.name}|{self.weight}|{self.kind}".encode())
        for t in self.texts:
            h.update(t.encode())
        for c, g in self.items:
            h.update(f"{c}\x00{g}\x01".encode())
        return h.hexdigest()[:16]


def _read_texts(path: str) -> list[str]:
    files = [p for p in storage.find(path) if not storage.basename(p).startswith(".")] \
        if storage.isdir(path) and not storage.isfile(path) else [path]
    if not files:
        raise FileNotFoundError(f"eval set path {path} holds no file")
    return [t for f in files for t in read_texts(f)]


def _read_tasks(path: str) -> list[tuple[str, str]]:
    items = []
    data = storage.read_bytes(path)
    text = (gzip.decompress(data) if path.endswith(".gz") else data).decode("utf-8")
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if not isinstance(rec.get("context"), str) or not isinstance(rec.get("gold"), str) or not rec["gold"]:
            raise ValueError(f"{path}:{n}: a task needs string 'context' and non-empty 'gold'")
        items.append((rec["context"], rec["gold"]))
    return items


def _cap(texts: list[str], max_bytes: int) -> list[str]:
    out, total = [], 0
    for t in texts:
        b = len(t.encode("utf-8"))
        if total + b > max_bytes:
            room = max_bytes - total
            if room > 200:
                out.append(t.encode("utf-8")[:room].decode("utf-8", errors="ignore"))
            break
        out.append(t)
        total += b
    return out


def build_suite(specs: list[dict], base_dir: str, pool: Pool, max_bytes: int) -> list[EvalSet]:
    """Materialise the configured eval sets (texts capped at max_bytes each, deterministically)."""
    suite = []
    for spec in specs:
        name, weight = spec["name"], float(spec.get("weight", 1.0))
        if spec.get("domain"):
            domain = next((d for d in pool.domains if d.name == spec["domain"]), None)
            if domain is None:
                raise ValueError(f"eval set {name!r}: no pool domain {spec['domain']!r} (pool: {pool.names})")
            suite.append(EvalSet(name, weight, "text", texts=_cap(domain.heldout_texts, max_bytes)))
        elif spec.get("path"):
            path = storage.join(base_dir, spec["path"])
            suite.append(EvalSet(name, weight, "text", texts=_cap(_read_texts(path), max_bytes)))
        else:
            items = _read_tasks(storage.join(base_dir, spec["tasks"]))
            suite.append(EvalSet(name, weight, "task", items=items))
        if not (suite[-1].texts or suite[-1].items):
            raise ValueError(f"eval set {name!r} is empty")
    return suite


def token_bytes(tokenizer: Tokenizer) -> np.ndarray:
    """UTF-8 bytes each token id stands for (1 for every byte token)."""
    if tokenizer.describe()["kind"] == "bytes":
        return np.ones(256, dtype=np.int64)
    # byte-level BPE writes every byte as one character of its alphabet: a token's length is its byte count
    lengths = np.zeros(tokenizer.vocab_size, dtype=np.int64)
    for token, idx in tokenizer.tok.get_vocab().items():  # type: ignore[attr-defined]
        lengths[idx] = 0 if token == "<eot>" else len(token)
    return lengths


def _windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows that predict every token but the first once: inputs and a target mask."""
    n = len(ids) - 1
    count = math.ceil(n / context)
    pad = count * context + 1 - len(ids)
    ids = np.concatenate([ids, np.zeros(pad, dtype=np.int64)])
    idx = np.arange(count)[:, None] * context + np.arange(context + 1)
    seqs = ids[idx]
    mask = np.ones((count, context), dtype=bool)
    if pad:
        mask[-1, context - pad :] = False
    return seqs, mask


@torch.no_grad()
def _nll_bits(model: StackedGPT, seqs: np.ndarray, mask: np.ndarray, device: torch.device, batch: int,
              amp: bool) -> np.ndarray:
    """NLL in bits over the masked target positions of each sequence, for each proxy: [M, sequences]."""
    m = model.n_models
    out = []
    for start in range(0, len(seqs), batch):
        s = torch.from_numpy(seqs[start : start + batch]).to(device)
        k = torch.from_numpy(mask[start : start + batch]).to(device)
        x = s[:, :-1].unsqueeze(0).expand(m, -1, -1)
        y = s[:, 1:].unsqueeze(0).expand(m, -1, -1)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                reduction="none").reshape(y.shape)
        out.append((nll * k.unsqueeze(0)).sum(dim=2).double())
    return (torch.cat(out, dim=1) / math.log(2)).cpu().numpy()


@dataclass
class Scores:
    """Bits per byte per eval set for each proxy, and the bits of every scoring unit (a window of text or a
    task item) behind them, so that the evaluation's own sampling noise can be measured."""

    bpb: list[dict[str, float]]  # one dict per proxy
    unit_bits: dict[str, np.ndarray]  # per set: [proxies, units]
    unit_bytes: dict[str, np.ndarray]  # per set: [units], target bytes of each unit


def _units(es: EvalSet, tokenizer: Tokenizer, context: int, nbytes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sequences, target masks and target bytes per sequence of one eval set."""
    if es.kind == "text":
        parts = []
        for t in es.texts:
            parts += [tokenizer.encode(t), np.array([tokenizer.eot])]
        seqs, mask = _windows(np.concatenate(parts), context)
        return seqs, mask, (nbytes[seqs[:, 1:]] * mask).sum(axis=1)
    rows, masks, unit_bytes = [], [], []
    for ctx, gold in es.items:
        c, g = tokenizer.encode(ctx), tokenizer.encode(gold)
        seq = np.concatenate([np.array([tokenizer.eot]), c, g])[-(context + 1):]
        keep = min(len(g), context)
        row = np.zeros(context + 1, dtype=np.int64)
        row[: len(seq)] = seq
        mk = np.zeros(context, dtype=bool)
        mk[len(seq) - 1 - keep : len(seq) - 1] = True
        rows.append(row)
        masks.append(mk)
        unit_bytes.append(int(nbytes[g[-keep:]].sum()))
    return np.stack(rows), np.stack(masks), np.array(unit_bytes)


def score_suite(model: StackedGPT, suite: list[EvalSet], tokenizer: Tokenizer, device: torch.device,
                batch: int = 16, amp: bool = False) -> Scores:
    """Bits per byte of every eval set for every proxy of a stacked model."""
    context = model.config.context
    nbytes = token_bytes(tokenizer)
    scores = Scores([{} for _ in range(model.n_models)], {}, {})
    for es in suite:
        seqs, mask, unit_bytes = _units(es, tokenizer, context, nbytes)
        bits = _nll_bits(model, seqs, mask, device, batch, amp)
        total_bytes = max(int(unit_bytes.sum()), 1)
        for i in range(model.n_models):
            scores.bpb[i][es.name] = float(bits[i].sum() / total_bytes)
        scores.unit_bits[es.name] = bits.astype(np.float32)
        scores.unit_bytes[es.name] = unit_bytes.astype(np.int64)
    return scores


def paired_eval_se(bits_a: dict[str, np.ndarray], bits_b: dict[str, np.ndarray], unit_bytes: dict[str, np.ndarray],
                   suite: list[EvalSet]) -> float:
    """Standard error, from the finite eval sample, of objective(a) - objective(b) for two proxies scored on the
    same units: each set's units are treated as independent draws of the target (bits-per-byte ratio estimator)."""
    total = sum(es.weight for es in suite)
    var = 0.0
    for es in suite:
        d = bits_a[es.name].astype(np.float64) - bits_b[es.name].astype(np.float64)
        n, nbytes = len(d), unit_bytes[es.name].astype(np.float64)
        if n < 2 or nbytes.sum() <= 0:
            continue
        ratio = d.sum() / nbytes.sum()
        resid = d - ratio * nbytes
        se = math.sqrt(n * resid.var(ddof=1)) / nbytes.sum()
        var += (es.weight / total * se) ** 2
    return math.sqrt(var)


def objective(bpb: dict[str, float], suite: list[EvalSet]) -> float:
    """The weighted mean bits per byte over the suite (lower is better)."""
    total = sum(es.weight for es in suite)
    return sum(es.weight * bpb[es.name] for es in suite) / total
