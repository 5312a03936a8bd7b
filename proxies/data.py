"""Token streams per domain from a curated pool, split into train and held-out by document id.

A domain is a value of the pool's `source` column (or `domain`, as configured). A document is held out when a
hash of its id falls under the held-out fraction, so the split never depends on file order or sharding and a
held-out id never reaches a training stream. Batches for a mixture draw each sequence's domain by the mixture
weights, deterministically from a seed and with common random numbers (see MixtureSampler).
"""
from __future__ import annotations

import glob
import hashlib
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq

from pipelines.read.pool import is_heldout, split_value  # noqa: F401  (the one held-out split)
from pipelines.runtime.files import sha256_file

from .tokenizer import Tokenizer


@dataclass
class Domain:
    name: str
    train_ids: list[str] = field(default_factory=list)
    heldout_ids: list[str] = field(default_factory=list)
    train_texts: list[str] = field(default_factory=list)
    heldout_texts: list[str] = field(default_factory=list)
    train_bytes: int = 0
    tokens: np.ndarray | None = None  # the train stream, documents separated by the end-of-text token


@dataclass
class Pool:
    domains: list[Domain]
    manifest_hash: str

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.domains]

    def prior(self) -> np.ndarray:
        """The natural mixture: each domain's share of the training bytes."""
        sizes = np.array([d.train_bytes for d in self.domains], dtype=float)
        return sizes / sizes.sum()

    def vector(self, mixture: dict[str, float]) -> np.ndarray:
        unknown = set(mixture) - set(self.names)
        if unknown:
            raise ValueError(f"mixture names domains the pool does not have: {sorted(unknown)} (pool: {self.names})")
        w = np.array([float(mixture.get(n, 0.0)) for n in self.names])
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"mixture weights must be >= 0 and not all 0: {mixture}")
        return w / w.sum()


def pool_manifest_hash(pool_dir: str) -> str:
    manifest = os.path.join(pool_dir, "manifest.json")
    h = hashlib.sha256()
    if os.path.exists(manifest):
        with open(manifest, "rb") as fh:
            h.update(fh.read())
    else:
        for path in sorted(glob.glob(os.path.join(pool_dir, "kept", "*.parquet"))):
            h.update(bytes.fromhex(sha256_file(path)))
    return h.hexdigest()[:16]


def load_pool(pool_dir: str, domain_column: str = "source", heldout_fraction: float = 0.1,
              domains: list[str] | None = None) -> Pool:
    """Read `kept/*.parquet` of a curated pool into per-domain train and held-out documents."""
    shards = sorted(glob.glob(os.path.join(pool_dir, "kept", "*.parquet")))
    if not shards:
        raise FileNotFoundError(f"no curated shards in {pool_dir}/kept (run `refinery curate` first)")
    by_name: dict[str, Domain] = {}
    rows: list[tuple[str, str, str]] = []
    for path in shards:
        t = pq.read_table(path, columns=["id", "text", domain_column])
        rows.extend(zip(t.column(domain_column).to_pylist(), t.column("id").to_pylist(), t.column("text").to_pylist()))
    rows.sort(key=lambda r: (str(r[0]), r[1]))  # by domain, then id: independent of the shard layout
    for name, doc_id, text in rows:
        if name is None or not text:
            continue
        d = by_name.setdefault(name, Domain(name))
        if is_heldout(doc_id, heldout_fraction):
            d.heldout_ids.append(doc_id)
            d.heldout_texts.append(text)
        else:
            d.train_ids.append(doc_id)
            d.train_texts.append(text)
            d.train_bytes += len(text.encode("utf-8"))
    for d in by_name.values():
        # a small domain may draw no held-out document: hold out its lowest-valued one, still chosen by id
        if not d.heldout_ids and len(d.train_ids) >= 2:
            i = min(range(len(d.train_ids)), key=lambda j: split_value(d.train_ids[j]))
            d.heldout_ids.append(d.train_ids.pop(i))
            text = d.train_texts.pop(i)
            d.heldout_texts.append(text)
            d.train_bytes -= len(text.encode("utf-8"))
    names = sorted(by_name) if domains is None else list(domains)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"domains not in the pool's {domain_column!r} column: {missing} (found: {sorted(by_name)})")
    empty = [n for n in names if not by_name[n].train_texts]
    if empty:
        raise ValueError(f"domains with no training documents: {empty}")
    return Pool([by_name[n] for n in names], pool_manifest_hash(pool_dir))


def tokenize_pool(pool: Pool, tokenizer: Tokenizer) -> None:
    for d in pool.domains:
        parts = []
        for text in d.train_texts:
            parts.append(tokenizer.encode(text))
            parts.append(np.array([tokenizer.eot], dtype=np.int64))
        d.tokens = np.concatenate(parts)


@dataclass
class Stream:
    """All domains' train tokens in one array: domain i spans offsets[i] to offsets[i] + limits[i] + context."""

    tokens: np.ndarray
    offsets: np.ndarray
    limits: np.ndarray


def pool_stream(pool: Pool, context: int) -> Stream:
    cache = pool.__dict__.setdefault("_streams", {})
    if context not in cache:
        parts = []
        for d in pool.domains:
            s = d.tokens
            if len(s) < context + 2:  # a tiny domain: repeat it so that a window fits
                s = np.resize(s, context + 2)
            parts.append(s)
        cache[context] = Stream(np.concatenate(parts), np.cumsum([0] + [len(s) for s in parts[:-1]]),
                                np.array([len(s) - context - 1 for s in parts]))
    return cache[context]


DATA_ORDER = "common-random-numbers/1"  # how MixtureSampler draws: part of every run's cache key


class DomainOrder:
    """The seeded order in which one domain's windows are read: epoch after epoch, each a fresh shuffle of the
    domain's non-overlapping windows at a random phase. Every proxy with the same seed reads a domain in the same
    order, whatever its mixture: a proxy that gives the domain more weight reads further down the same list."""

    def __init__(self, limit: int, context: int, seed: int, name: str) -> None:
        self.limit, self.context = int(limit), context
        self.rng = np.random.default_rng([seed, 104729, zlib.crc32(name.encode())])
        self.order = np.zeros(0, dtype=np.int64)  # the epochs drawn so far, end to end

    def take(self, first: int, count: int) -> np.ndarray:
        """Window starts first .. first + count - 1 of this order (relative to the domain's start)."""
        while len(self.order) < first + count:
            phase = int(self.rng.integers(0, min(self.context, self.limit + 1)))
            epoch = self.rng.permutation(np.arange(phase, self.limit + 1, self.context, dtype=np.int64))
            self.order = np.concatenate([self.order, epoch])
        return self.order[first : first + count]


def domain_order(pool: Pool, index: int, seed: int, context: int) -> DomainOrder:
    """One shared DomainOrder per (domain, seed, context) of a pool, so proxies of one group share its memory."""
    cache = pool.__dict__.setdefault("_orders", {})
    key = (index, seed, context)
    if key not in cache:
        cache[key] = DomainOrder(pool_stream(pool, context).limits[index], context, seed, pool.names[index])
    return cache[key]


class MixtureSampler:
    """Sequences of context+1 tokens for one proxy, drawn with common random numbers.

    Slot j of the run (step * batch + position) takes its domain from the j-th uniform number of the seed's
    stream through the mixture's cumulative weights, and the n-th sequence a proxy draws from a domain is the n-th
    window of that domain's seeded order. Two proxies with the same seed and nearby mixtures therefore read
    nearly the same sequences in the same slots, so their difference measures the mixtures, not the draw.
    """

    def __init__(self, pool: Pool, weights: np.ndarray, seed: int, context: int) -> None:
        st = pool_stream(pool, context)
        self.stream, self.offsets = st.tokens, st.offsets
        self.weights, self.context = np.asarray(weights, dtype=float), context
        self.cdf = np.cumsum(self.weights / self.weights.sum())
        self.cdf[-1] = 1.0
        self.slots = np.random.default_rng([seed, 7919])
        self.orders = [domain_order(pool, i, seed, context) for i in range(len(self.weights))]
        self.read = np.zeros(len(self.weights), dtype=np.int64)  # windows read so far, per domain

    def starts(self, size: int) -> np.ndarray:
        """Start offsets in `stream` of the next `size` sequences."""
        doms = np.minimum(np.searchsorted(self.cdf, self.slots.random(size), side="right"), len(self.cdf) - 1)
        out = np.empty(size, dtype=np.int64)
        for d in np.unique(doms):
            where = doms == d
            n = int(where.sum())
            out[where] = self.offsets[d] + self.orders[d].take(int(self.read[d]), n)
            self.read[d] += n
        return out

    def batch(self, size: int) -> np.ndarray:
        return self.stream[self.starts(size)[:, None] + np.arange(self.context + 1)]
