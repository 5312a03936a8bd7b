"""Token streams per domain from a bounded sample of a curated pool, split into train and held-out by id.

A domain is a value of the pool's `source` column (or `domain`, as configured). A document is held out when a
hash of its id falls under the held-out fraction, so the split never depends on file order or sharding and a
held-out id never reaches a training stream. The swarm needs a bounded number of tokens per domain, not the
pool: `load_pool` reads the pool's ids, domains and text lengths (one row group at a time), then takes each
domain's documents in the order of a hash of their id until `sample_bytes` of training text (and `heldout_bytes`
of held-out text), and reads the text of those documents alone, by location. Each domain's full size is kept
for the prior and the epoch caps. Batches for a mixture draw each sequence's domain by the mixture weights,
deterministically from a seed and with common random numbers (see MixtureSampler).
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow.compute as pc

from pipelines.runtime import storage
from pipelines.read.pool import CuratedPool, id_hash, is_heldout, split_value, split_values  # noqa: F401

from .tokenizer import Tokenizer, id_dtype


@dataclass
class Domain:
    name: str
    train_ids: list[str] = field(default_factory=list)
    heldout_ids: list[str] = field(default_factory=list)
    train_texts: list[str] = field(default_factory=list)
    heldout_texts: list[str] = field(default_factory=list)
    train_bytes: int = 0  # the whole domain's training text (what the prior and the caps count)
    train_documents: int = 0
    sample_bytes: int = 0  # the training text sampled (train_texts)
    tokens: np.ndarray | None = None  # the sampled train stream, documents separated by the end-of-text token

    @property
    def total_tokens(self) -> float:
        """Tokens of the whole domain's training text: exact when the sample is the whole domain, else the
        sample's tokens scaled by bytes."""
        if self.tokens is None or not self.sample_bytes:
            return 0.0
        return len(self.tokens) * self.train_bytes / self.sample_bytes

    def seen(self) -> dict[str, float]:
        """How much of the domain the swarm saw."""
        return {"documents": len(self.train_ids), "of_documents": self.train_documents,
                "bytes": self.sample_bytes, "of_bytes": self.train_bytes,
                "share": round(self.sample_bytes / self.train_bytes, 6) if self.train_bytes else 0.0}


@dataclass
class Pool:
    domains: list[Domain]
    manifest_hash: str  # names the data: the pool's manifest and the sample taken of it

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.domains]

    def prior(self) -> np.ndarray:
        """The natural mixture: each domain's share of the training bytes (of the whole pool, not the sample)."""
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


@dataclass
class _Candidates:
    """One domain's documents as slim arrays: location, text bytes, sample key, held out or not."""

    file: list[np.ndarray] = field(default_factory=list)
    row: list[np.ndarray] = field(default_factory=list)
    size: list[np.ndarray] = field(default_factory=list)
    key: list[np.ndarray] = field(default_factory=list)
    split: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(getattr(self, k)) for k in ("file", "row", "size", "key", "split")}


def _choose(c: dict[str, np.ndarray], where: np.ndarray, budget: int | None) -> np.ndarray:
    """Indices of the documents under `where`, in sample-key order, until `budget` bytes (None: all)."""
    idx = np.flatnonzero(where)
    idx = idx[np.lexsort((c["row"][idx], c["file"][idx], c["key"][idx]))]
    if budget is None:
        return idx
    cum = np.cumsum(c["size"][idx])
    return idx[: int(np.searchsorted(cum, budget)) + 1]


def load_pool(pool_dir: str, domain_column: str = "source", heldout_fraction: float = 0.1,
              domains: list[str] | None = None, sample_bytes: int | None = None,
              heldout_bytes: int | None = None) -> Pool:
    """Per-domain train and held-out documents of a curated pool: every document, or a sample of at least
    `sample_bytes` (and `heldout_bytes`) per domain. Memory holds one row group plus the slim arrays."""
    pool = CuratedPool(pool_dir)
    pool.require(domain_column, "domain_column")
    found: dict[str, _Candidates] = {}
    for file, table in pool.scan(["id", domain_column, "text"]):
        names = table.column(domain_column).to_pylist()
        ids = table.column("id").to_pylist()
        sizes = pc.fill_null(pc.binary_length(table.column("text")), 0).to_numpy()
        rows = table.column("row").to_numpy()
        per: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            if name is not None and sizes[i] > 0:
                per.setdefault(name, []).append(i)
        for name, picked in per.items():
            c = found.setdefault(name, _Candidates())
            c.file.append(np.full(len(picked), file, dtype=np.int32))
            c.row.append(rows[picked].astype(np.int64))
            c.size.append(sizes[picked].astype(np.int64))
            c.key.append(np.array([id_hash(ids[i], "sample") for i in picked], dtype=np.uint64))
            c.split.append(split_values([ids[i] for i in picked]))
    names = sorted(found) if domains is None else list(domains)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"domains not in the pool's {domain_column!r} column: {missing} (found: {sorted(found)})")
    chosen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    built: dict[str, Domain] = {}
    for name in names:
        c = found[name].arrays()
        heldout = c["split"] < heldout_fraction
        if not heldout.any() and len(heldout) >= 2:  # a small domain: hold out its lowest-valued document
            heldout[np.argmin(c["split"])] = True
        train = ~heldout
        if not train.any():
            raise ValueError(f"domains with no training documents: {[name]}")
        d = Domain(name, train_bytes=int(c["size"][train].sum()), train_documents=int(train.sum()))
        chosen[name] = (c, _choose(c, train, sample_bytes), _choose(c, heldout, heldout_bytes))
        built[name] = d
    _read_texts(pool, chosen, built, domain_column)
    sample = {"sample_bytes": sample_bytes, "heldout_bytes": heldout_bytes, "heldout_fraction": heldout_fraction,
              "domain_column": domain_column, "documents": {n: len(built[n].train_ids) for n in names}}
    key = hashlib.sha256(json.dumps([pool.manifest_hash, sample], sort_keys=True).encode()).hexdigest()[:16]
    return Pool([built[n] for n in names], key)


def _read_texts(pool: CuratedPool, chosen: dict, built: dict[str, Domain], domain_column: str) -> None:
    """Read the chosen documents' ids and text by location, piece by piece; each domain's train and held-out
    documents in id order."""
    wanted: dict[tuple[int, int], list[tuple[int, str, bool]]] = {}
    for name, (c, train, heldout) in chosen.items():
        for idx, is_train in ((train, True), (heldout, False)):
            for file in np.unique(c["file"][idx]).tolist():
                rows = c["row"][idx][c["file"][idx] == file]
                for row, group in zip(rows.tolist(), pool.group_of(file, rows).tolist()):
                    wanted.setdefault((file, group), []).append((row, name, is_train))
    got: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    for (file, group), entries in sorted(wanted.items()):
        entries.sort()
        table = pool.take(file, group, np.array([e[0] for e in entries]), ["id", "text"])
        for (_, name, is_train), doc_id, text in zip(entries, table.column("id").to_pylist(),
                                                     table.column("text").to_pylist()):
            got.setdefault((name, is_train), []).append((doc_id, text))
    for name, d in built.items():
        for is_train in (True, False):
            docs = sorted(got.get((name, is_train), []))
            ids, texts = [i for i, _ in docs], [t for _, t in docs]
            if is_train:
                d.train_ids, d.train_texts = ids, texts
                d.sample_bytes = sum(len(t.encode("utf-8")) for t in texts)
            else:
                d.heldout_ids, d.heldout_texts = ids, texts


def tokenize_pool(pool: Pool, tokenizer: Tokenizer, folder: str | None = None) -> None:
    """Each domain's sampled train stream, tokenized once into the smallest dtype that holds the vocabulary;
    with `folder`, written there and memory-mapped (the texts are then dropped). A folder in a bucket cannot be
    memory-mapped: the token files go to the local cache folder instead (storage.cache_folder)."""
    if folder is not None and storage.is_url(folder):
        folder = os.path.join(storage.cache_folder(), "tokens")
    dtype = id_dtype(tokenizer.vocab_size)
    for d in pool.domains:
        parts = []
        for text in d.train_texts:
            parts.append(tokenizer.encode(text).astype(dtype))
            parts.append(np.array([tokenizer.eot], dtype=dtype))
        tokens = np.concatenate(parts) if parts else np.zeros(0, dtype)
        if folder is None:
            d.tokens = tokens
            continue
        path = os.path.join(folder, f"{pool.manifest_hash}-{hashlib.sha256(d.name.encode()).hexdigest()[:12]}.bin")
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        tokens.tofile(tmp)
        os.replace(tmp, path)
        d.tokens = np.memmap(path, dtype=dtype, mode="r")


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
