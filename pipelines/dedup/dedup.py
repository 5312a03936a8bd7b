"""Deduplication on small records: exact text, URL, and MinHash near-duplicates.

The worker that stages a unit computes what dedup needs of each row (content hash, URL key, MinHash band keys);
the stages here read those columns back from the staged units and shuffle only packed numpy records: hashes,
ranks and row numbers, never text. Exact and URL dedup group records by key, one survivor per group. MinHash
groups band keys into LSH buckets and checks each candidate pair on the rows' staged signatures: a pair whose
estimate lies clearly above or below the threshold is decided on it, and only the pairs near it read their rows'
shingles (from the staged text) for the exact Jaccard. Clusters are connected components, found by
large-star/small-star rounds, with the few edges that have not settled after the last round resolved together.

The survivor of a group is the row with the highest quality score (when classifiers ran), then the longest
text, then the smallest id. Each stage takes and returns `(unit index, [Decision, ...])` for every unit.
"""
from __future__ import annotations

import hashlib
import zlib
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from pipelines.config.curate import DedupSettings, MinHashSettings
from pipelines.runtime.decisions import CoGroup, Decision, Decisions, Shuffle, Then, unit_of
from pipelines.runtime.files import write_json
from pipelines.dedup.minhash import band_keys, catch_probability, jaccard, s_curve_threshold, shingle_hashes, signatures
from pipelines.schema import Row, scores_of
from pipelines.runtime.staging import read_staged

NAMESPACE = "refinery"


def quality(doc: Row, score_name: str | None) -> float:
    scores = scores_of(doc.get("scores"))
    if score_name:
        return float(scores.get(score_name, float("-inf")))
    return max((v for k, v in scores.items() if k.startswith("quality")), default=0.0)


def survivor_key(doc: Row, score_name: str | None) -> tuple[float, int, str]:
    """Smaller is better: highest quality, then longest text (`n_chars`), then smallest id."""
    return (-quality(doc, score_name), -doc["n_chars"], doc["id"])


def _hex(hi: int, lo: int) -> str:
    return f"{int(hi):016x}{int(lo):016x}"


def _halves(hexes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([int(h[:16], 16) for h in hexes], dtype=np.uint64),
            np.array([int(h[16:32], 16) for h in hexes], dtype=np.uint64))


# ---- what the staging worker computes -----------------------------------------------------------

def normalize_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and trailing slash dropped; the query kept."""
    try:
        p = urlsplit(url.strip())
        port = p.port
    except ValueError:
        return url.strip()
    scheme = p.scheme.lower()
    netloc = (p.hostname or "").lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc += f":{port}"
    path = p.path.rstrip("/") or "/"
    return f"{scheme}://{netloc}{path}" + (f"?{p.query}" if p.query else "")


def url_key(url: str | None) -> int | None:
    """A 64-bit hash of the normalised URL (None without a URL)."""
    if not url:
        return None
    return int.from_bytes(hashlib.blake2b(normalize_url(url).encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little")


def url_date(doc: Row) -> str:
    meta = doc.get("metadata") or {}
    return str(meta.get("warc_date") or meta.get("date") or "")


def sketch(rows: list[Row], s: MinHashSettings) -> None:
    """Set `bands` (8 bytes per band key) and `sig` (the low 16 bits of each signature value) on rows that passed
    so far; rows without a word keep None."""
    todo = [r for r in rows if "reason" not in r]
    shingles = [shingle_hashes(r["text"], s.ngram) for r in todo]
    have = [i for i, sh in enumerate(shingles) if len(sh)]
    sigs = signatures([shingles[i] for i in have], s.bands * s.rows, s.seed)
    for i, sig in zip(have, sigs):
        todo[i]["bands"] = b"".join(k[1:9] for k in band_keys(sig, s.bands, s.rows))
        todo[i]["sig"] = (sig & np.uint64(0xFFFF)).astype("<u2").tobytes()
    Metrics.counter(NAMESPACE, "dedup/no_shingles").inc(len(todo) - len(have))


# ---- records read back from the staged units ----------------------------------------------------

def _open_rows(folder: str, decisions: list[Decision], columns: list[str],
               rows: np.ndarray | None = None) -> dict[str, np.ndarray | list]:
    """The staged columns of the rows no stage has rejected yet (of `rows` only, when given)."""
    table = read_staged(folder, ["reason"] + columns, None if rows is None else rows.tolist())
    rejected = {d.row for d in decisions if d.reason is not None}
    rows = table.column("row").to_numpy()
    keep = np.array([r is None for r in table.column("reason").to_pylist()], dtype=bool)
    if rejected:
        keep &= ~np.isin(rows, np.fromiter(rejected, dtype=np.int64, count=len(rejected)))
    out: dict[str, Any] = {"row": rows[keep]}
    where = np.flatnonzero(keep)
    for c in columns:
        values = table.column(c).to_pylist()
        out[c] = [values[i] for i in where]
    return out


def _qualities(scores: list, score_name: str | None) -> np.ndarray:
    return np.array([quality({"scores": s}, score_name) for s in scores], dtype=np.float64)


KEYED = [("h1", "<u8"), ("h2", "<u8"), ("q", "<f8"), ("n", "<i8"), ("id1", "<u8"), ("id2", "<u8"), ("unit", "<u4"),
         ("row", "<u4")]


def _keyed_records(index: int, cols: dict[str, Any], h1: np.ndarray, h2: np.ndarray, score_name: str | None,
                   dates: list[str] | None = None) -> np.ndarray:
    a = np.zeros(len(h1), dtype=KEYED + ([("date", "S32")] if dates is not None else []))
    a["h1"], a["h2"] = h1, h2
    if dates is not None:
        a["date"] = [d.encode("utf-8", "replace")[:32] for d in dates]
    a["q"] = _qualities(cols["scores"], score_name)
    a["n"] = cols["n_chars"]
    a["id1"], a["id2"] = _halves(cols["id"])
    a["unit"], a["row"] = index, cols["row"]
    return a


def _partitioned(records: np.ndarray, key: np.ndarray, partitions: int) -> Iterator[tuple[int, np.ndarray]]:
    part = (key % np.uint64(partitions)).astype(np.int64)
    for p in np.unique(part):
        yield int(p), records[part == p]


def _groups(keys: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Index arrays of the runs of equal keys (rows already sorted by them) with more than one member."""
    n = len(keys[0])
    if n < 2:
        return
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n)
    multi = ends - starts > 1
    for s, e in zip(starts[multi].tolist(), ends[multi].tolist()):
        yield np.arange(s, e)


def _by_unit(decisions: list[tuple[int, Decision]]) -> Iterator[tuple[int, Decisions]]:
    out: dict[int, Decisions] = {}
    for index, d in decisions:
        out.setdefault(index, Decisions()).append(d)
    yield from out.items()


def _choose(a: np.ndarray, newest: bool, reason: str, annotate: bool) -> Iterator[tuple[int, list[Decision]]]:
    """One survivor per group of equal (h1, h2): the first in rank order; the rest rejected with `reason`."""
    newest = newest and "date" in a.dtype.names
    date_rank = np.unique(a["date"], return_inverse=True)[1].astype(np.int64) if newest else np.zeros(len(a), np.int64)
    order = np.lexsort((a["id2"], a["id1"], -a["n"], -a["q"], -date_rank, a["h2"], a["h1"]))
    a = a[order]
    out: list[tuple[int, Decision]] = []
    for members in _groups([a["h1"], a["h2"]]):
        g = a[members]
        survivor = _hex(g["id1"][0], g["id2"][0])
        cluster = _hex(g["h1"][0], g["h2"][0]) if annotate else None
        size = len(g) if annotate else None
        for i, rec in enumerate(g):
            if i == 0:
                if annotate:
                    out.append((int(rec["unit"]), Decision(int(rec["row"]), None, None, cluster, size)))
                continue
            out.append((int(rec["unit"]), Decision(int(rec["row"]), reason, survivor, cluster, size)))
    yield from _by_unit(out)


def _pack(index: int, rows: np.ndarray, keys: np.ndarray, partitions: int) -> Iterator[tuple[int, tuple]]:
    """Row numbers and 64-bit keys of one unit as compact parts, one per partition (key % partitions): row
    deltas, zlib-compressed, and the key's high 32 bits (with the partition, 32 + log2(partitions) bits)."""
    part = (keys % np.uint64(partitions)).astype(np.int64)
    for p in np.unique(part):
        sel = part == p
        deltas = np.diff(rows[sel], prepend=0).astype("<u4")
        yield int(p), (index, zlib.compress(deltas.tobytes(), 1), (keys[sel] >> np.uint64(32)).astype("<u4").tobytes())


def _unpack(parts: Iterable[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit index, row, key) arrays of packed parts."""
    index, rows, keys = [], [], []
    for i, rz, kb in parts:
        r = np.cumsum(np.frombuffer(zlib.decompress(rz), dtype="<u4").astype(np.int64))
        index.append(np.full(len(r), i, dtype=np.int64))
        rows.append(r)
        keys.append(np.frombuffer(kb, dtype="<u4"))
    return np.concatenate(index), np.concatenate(rows), np.concatenate(keys)


def _repeated(parts: Iterable[tuple]) -> Iterator[tuple[int, np.ndarray]]:
    """(unit index, rows) of the rows whose key another row shares."""
    index, rows, keys = _unpack(parts)
    values, counts = np.unique(keys, return_counts=True)
    shared = np.isin(keys, values[counts > 1])
    for i in np.unique(index[shared]):
        yield int(i), rows[shared & (index == i)]


class _KeyedDedup(beam.PTransform):
    """One survivor per key. First every row's key alone is shuffled, packed; then only the rows whose key is
    shared send what picks the survivor (full hash, quality, length, id).

    A subclass names its columns and gives `keys(values)` (positions of the rows that have a key, their 64-bit
    keys) and `records(index, cols)` (the packed records of the rows whose key is shared)."""

    what = ""
    reason = ""
    key_column = ""
    columns: list[str] = []

    def __init__(self, settings: DedupSettings, folders: list[str], partitions: int) -> None:
        super().__init__()
        self.score_name, self.newest = settings.quality_score, settings.url_keep == "newest"
        self.folders, self.partitions = folders, partitions

    def expand(self, decided: Any) -> Any:
        folders, partitions = self.folders, self.partitions

        def keys(item: tuple[int, list[Decision]]) -> Iterator[tuple[int, tuple]]:
            index, decisions = item
            cols = _open_rows(folders[index], decisions, [self.key_column])
            where, k = self.keys(cols[self.key_column])
            yield from _pack(index, cols["row"][where], k, partitions)

        def records(index: int, rows: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
            wanted = np.unique(np.concatenate(list(rows)))
            cols = _open_rows(folders[index], [], self.columns, wanted)
            a = self.records(index, cols)
            yield from _partitioned(a, a["h1"], partitions)

        newest, reason, annotate = self.newest, self.reason, self.what == "exact"
        new = (decided
               | "Keys" >> beam.FlatMap(keys)
               | "ByKey" >> Shuffle(f"{self.what}_keys")
               | "Shared" >> beam.FlatMapTuple(lambda _, parts: _repeated(parts))
               | "ByUnit" >> Shuffle(f"{self.what}_rows")
               | "Records" >> beam.FlatMapTuple(records)
               | "ByHash" >> Shuffle(self.what)
               | "Choose" >> beam.FlatMapTuple(
                   lambda _, parts: _choose(np.concatenate(list(parts)), newest, reason, annotate)))
        return decided | "Then" >> Then(new, "decisions")


class ExactDedup(_KeyedDedup):
    """Rows with the same normalised-text hash: one survivor, the rest `dedup:exact`."""

    what, reason, key_column = "exact", "dedup:exact", "content_hash"
    columns = ["content_hash", "n_chars", "id", "scores"]

    def keys(self, values: list) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(values)), np.array([int(h[:16], 16) for h in values], dtype=np.uint64)

    def records(self, index: int, cols: dict[str, Any]) -> np.ndarray:
        h1, h2 = _halves(cols["content_hash"])
        return _keyed_records(index, cols, h1, h2, self.score_name)


class UrlDedup(_KeyedDedup):
    """Rows with the same normalised URL: keep the newest (or the best), the rest `dedup:url`."""

    what, reason, key_column = "url", "dedup:url", "url_key"
    columns = ["url_key", "date", "n_chars", "id", "scores"]

    def keys(self, values: list) -> tuple[np.ndarray, np.ndarray]:
        where = np.array([i for i, k in enumerate(values) if k is not None], dtype=np.int64)
        return where, np.array([values[i] for i in where], dtype=np.uint64)

    def records(self, index: int, cols: dict[str, Any]) -> np.ndarray:
        keys = np.array(cols["url_key"], dtype=np.uint64)
        return _keyed_records(index, cols, keys, np.zeros(len(keys), np.uint64), self.score_name,
                              [d or "" for d in cols["date"]])


# ---- MinHash -------------------------------------------------------------------------------------

def bucket_pairs(ids: Iterable[Any], max_bucket: int) -> Iterator[tuple[Any, Any]]:
    """Candidate pairs of one LSH bucket, (smaller, larger).

    A bucket of up to max_bucket members gives every pair; a larger one pairs each member with the
    bucket's first and with its predecessor, which keeps the bucket connected in O(size) pairs.
    """
    members = sorted(set(ids))
    if len(members) <= max_bucket:
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                yield a, b
        return
    Metrics.counter(NAMESPACE, "dedup/capped_buckets").inc()
    first = members[0]
    for i in range(1, len(members)):
        yield first, members[i]
        if i > 1:
            yield members[i - 1], members[i]


PAIR = [("a", "<i8"), ("b", "<i8")]


def _bucket_pairs(parts: Iterable[tuple], max_bucket: int, partitions: int,
                  starts: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Candidate pairs (global row numbers) of the LSH buckets of one partition."""
    index, rows, keys = _unpack(parts)
    g = starts[index] + rows
    order = np.lexsort((g, keys))
    g, keys = g[order], keys[order]
    pairs = [pair for members in _groups([keys]) for pair in bucket_pairs(g[members].tolist(), max_bucket)]
    if pairs:
        out = np.array(pairs, dtype=PAIR)
        yield from _partitioned(out, out["a"].astype(np.uint64), partitions)


def _by_unit_of(pairs: np.ndarray, side: str, starts: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    index, _ = unit_of(pairs[side], starts)
    for i in np.unique(index):
        yield int(i), pairs[index == i]


class _Rows(beam.DoFn):
    """What a pair check needs of some rows of a unit, read from its staged pieces: their survivor rank, and
    their MinHash signature (the estimate round) or their shingles (the exact round)."""

    def __init__(self, s: MinHashSettings, score_name: str | None, folders: list[str], exact: bool) -> None:
        self.s, self.score_name, self.folders, self.exact = s, score_name, folders, exact

    def read(self, index: int, nodes: np.ndarray, starts: np.ndarray) -> Iterator[tuple[int, np.ndarray, tuple]]:
        base = int(starts[index])
        value = "text" if self.exact else "sig"
        table = read_staged(self.folders[index], [value, "n_chars", "id", "scores"],
                            rows=(np.unique(nodes) - base).tolist())
        columns = (table.column(c).to_pylist() for c in ("row", value, "n_chars", "id", "scores"))
        for row, v, n, doc_id, scores in zip(*columns):
            payload = shingle_hashes(v, self.s.ngram) if self.exact else np.frombuffer(v, dtype="<u2")
            yield base + row, payload, survivor_key({"id": doc_id, "n_chars": n, "scores": scores}, self.score_name)

    def pack(self, payload: np.ndarray) -> bytes:
        return _compact(payload) if self.exact else payload.tobytes()

    def similarity(self, packed: bytes, payload: np.ndarray) -> float:
        if self.exact:
            return jaccard(_expand(packed), payload)
        return float(np.mean(np.frombuffer(packed, dtype="<u2") == payload))


def _compact(shingles: np.ndarray) -> bytes:
    """Sorted shingle hashes as zlib-compressed gaps (about 10% smaller than the raw array)."""
    return zlib.compress(np.diff(shingles, prepend=np.uint32(0)).astype("<u4").tobytes(), 6)


def _expand(packed: bytes) -> np.ndarray:
    return np.cumsum(np.frombuffer(zlib.decompress(packed), dtype="<u4"), dtype=np.uint64).astype(np.uint32)


class _Send(_Rows):
    """At the unit of each pair's first row: its signature or shingles and its rank, sent once to every unit
    holding a partner."""

    def process(self, item: tuple[int, Iterable[np.ndarray]], starts: np.ndarray) -> Iterator[Any]:
        index, parts = item
        pairs = np.concatenate(list(parts))
        partner_unit, _ = unit_of(pairs["b"], starts)
        for node, payload, rank in self.read(index, pairs["a"], starts):
            packed = self.pack(payload)
            for dest in np.unique(partner_unit[pairs["a"] == node]):
                yield int(dest), (node, packed, rank)


class _Verify(_Rows):
    """At the unit of each pair's second row: the pair's similarity, and the ranks of the rows of pairs at or
    above the threshold (what the clusters are decided on).

    The exact round scores each pair by the Jaccard of its shingles. The estimate round scores it by the share of
    equal signature values and decides it when that lies more than `exact_margin` standard errors from the
    threshold; the pairs in between go out as `unsure`, for the exact round."""

    def process(self, item: tuple[int, dict[str, list]], starts: np.ndarray) -> Iterator[Any]:
        index, g = item
        if not g["pairs"]:
            return
        pairs = np.concatenate(g["pairs"])
        sent = {node: (packed, rank) for node, packed, rank in g["sent"]}
        t = self.s.threshold
        margin = self.s.exact_margin * (t * (1 - t) / (self.s.bands * self.s.rows)) ** 0.5
        ranked: set[int] = set()
        unsure: list[tuple[int, int]] = []
        for node, payload, rank in self.read(index, pairs["b"], starts):
            for a in pairs["a"][pairs["b"] == node].tolist():
                packed, rank_a = sent[a]
                similarity = self.similarity(packed, payload)
                if not self.exact and abs(similarity - t) <= margin:
                    unsure.append((a, node))
                    continue
                yield a, node, similarity
                if similarity >= t:
                    for n, r in ((a, rank_a), (node, rank)):
                        if n not in ranked:
                            ranked.add(n)
                            yield beam.pvalue.TaggedOutput("ranks", (n, r))
        if unsure:
            yield beam.pvalue.TaggedOutput("unsure", np.array(unsure, dtype=PAIR))


class _Check(beam.PTransform):
    """One round of pair checks: each pair's first row sends what the round compares to its partner's unit."""

    def __init__(self, s: MinHashSettings, score_name: str | None, folders: list[str], exact: bool,
                 starts: Any) -> None:
        super().__init__()
        self.args, self.starts = (s, score_name, folders, exact), starts
        self.what = "minhash_shingles" if exact else "minhash_signatures"

    def expand(self, pairs: Any) -> Any:
        starts = self.starts
        sent = (
            pairs
            | "ByFirst" >> beam.FlatMap(_by_unit_of, "a", starts)
            | "ToFirst" >> Shuffle("minhash_pairs")
            | "Send" >> beam.ParDo(_Send(*self.args), starts)
        )
        return (
            {"pairs": pairs | "BySecond" >> beam.FlatMap(_by_unit_of, "b", starts), "sent": sent}
            | "ToSecond" >> CoGroup(self.what)
            | "Verify" >> beam.ParDo(_Verify(*self.args), starts).with_outputs("ranks", "unsure", main="scored")
        )


class MinHashDedup(beam.PTransform):
    """Near-duplicate removal; returns {"decided", "audit"} (the audit is one dict)."""

    def __init__(self, settings: DedupSettings, folders: list[str], partitions: int, starts: Any) -> None:
        super().__init__()
        self.s, self.score_name = settings.minhash, settings.quality_score
        self.folders, self.partitions, self.starts = folders, partitions, starts

    def expand(self, decided: Any) -> Any:
        s, folders, partitions = self.s, self.folders, self.partitions
        starts = beam.pvalue.AsSingleton(self.starts)

        def band_records(item: tuple[int, list[Decision]]) -> Iterator[tuple[int, tuple]]:
            index, decisions = item
            cols = _open_rows(folders[index], decisions, ["bands"])
            has = [i for i, b in enumerate(cols["bands"]) if b is not None]
            if has:
                keys = np.frombuffer(b"".join(cols["bands"][i] for i in has), dtype="<u8")
                yield from _pack(index, np.repeat(cols["row"][has], s.bands), keys, partitions)

        pairs = (
            decided
            | "Bands" >> beam.FlatMap(band_records)
            | "Buckets" >> Shuffle("minhash_bands")
            | "Pairs" >> beam.FlatMap(lambda kv, starts: _bucket_pairs(kv[1], s.max_bucket, partitions, starts), starts)
            | "PairParts" >> Shuffle("minhash_pairs")
            | "Distinct" >> beam.MapTuple(lambda _, parts: np.unique(np.concatenate(list(parts))))
        )
        estimated = pairs | "Estimate" >> _Check(s, self.score_name, folders, False, starts)
        checked = estimated.unsure | "Exact" >> _Check(s, self.score_name, folders, True, starts)
        scored = (estimated.scored, checked.scored) | "Scored" >> beam.Flatten()
        ranks = (estimated.ranks, checked.ranks) | "Ranks" >> beam.Flatten()
        candidates = pairs | "CandidateCount" >> beam.Map(len)
        verified = scored | "Threshold" >> beam.Filter(lambda p: p[2] >= s.threshold)
        cc = verified | "Edges" >> beam.Map(lambda p: (p[0], p[1])) | "Components" >> ConnectedComponents(s.cc_rounds)
        sizes = decided | "ExactSizes" >> beam.FlatMap(
            lambda kv, starts: [(int(starts[kv[0]]) + d.row, d.size) for d in kv[1] if d.reason is None and d.size],
            starts)

        def decide(root: int, members: Iterable[tuple[int, tuple]], starts: np.ndarray) -> Iterator[tuple[Any, Any]]:
            ranked = sorted(members, key=lambda m: m[1][0])  # (survivor key, size): the key ends with the id
            survivor = ranked[0][1][0][2]
            cluster = min(m[1][0][2] for m in ranked)
            size = sum(m[1][1] for m in ranked)
            index, rows = unit_of(np.array([m[0] for m in ranked], dtype=np.int64), starts)
            for i, (unit, row) in enumerate(zip(index.tolist(), rows.tolist())):
                reason = None if i == 0 else "dedup:minhash"
                yield unit, Decisions([Decision(row, reason, None if i == 0 else survivor, cluster, size)])
            yield "sizes", len(ranked)

        def member(kv: tuple[int, dict[str, list]]) -> list[tuple[int, tuple]]:
            node, g = kv
            if not g["root"] or not g["rank"]:
                return []
            return [(g["root"][0], (node, (g["rank"][0], (g["size"] or [1])[0])))]

        decisions = (
            {"root": cc["roots"], "rank": ranks, "size": sizes}
            | "JoinRank" >> CoGroup("minhash_clusters")
            | "Members" >> beam.FlatMap(member)
            | "ByCluster" >> Shuffle("minhash_clusters")
            | "Decide" >> beam.FlatMap(lambda kv, starts: decide(kv[0], kv[1], starts), starts)
        )
        new = decisions | "Decisions" >> beam.Filter(lambda kv: kv[0] != "sizes")

        # ---- the audit: one dict
        count = beam.combiners.Count.Globally
        n_candidates = candidates | "CountCandidates" >> beam.CombineGlobally(sum)
        n_verified = verified | "CountVerified" >> count()
        n_exact = checked.scored | "CountExact" >> count()
        jaccard_bins = (
            scored
            | "Bin" >> beam.Map(lambda p: f"{min(int(p[2] * 10), 9) / 10:.1f}")
            | "CountBins" >> beam.combiners.Count.PerElement()
            | "Bins" >> beam.combiners.ToDict()
        )
        cluster_sizes = (
            decisions
            | "Clusters" >> beam.Filter(lambda kv: kv[0] == "sizes")
            | "SizeBuckets" >> beam.Map(lambda kv: _size_bucket(kv[1]))
            | "CountSizes" >> beam.combiners.Count.PerElement()
            | "Sizes" >> beam.combiners.ToDict()
        )
        side = beam.pvalue.AsSingleton
        audit = (
            n_candidates
            | "Audit" >> beam.Map(
                lambda cand, ver, exact, bins, sizes, residual: {
                    "settings": {"ngram": s.ngram, "bands": s.bands, "rows": s.rows, "threshold": s.threshold,
                                 "seed": s.seed, "exact_margin": s.exact_margin, "cc_rounds": s.cc_rounds,
                                 "max_bucket": s.max_bucket},
                    "s_curve_threshold": round(s_curve_threshold(s.bands, s.rows), 4),
                    "catch_probability": {f"{x:.2f}": round(catch_probability(x, s.bands, s.rows), 4)
                                          for x in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)},
                    "candidate_pairs": cand,
                    "verified_pairs": ver,
                    "candidate_precision": round(ver / cand, 4) if cand else None,
                    "candidate_jaccard_histogram": dict(sorted(bins.items())),
                    "checked_exactly": exact,
                    "clusters": sum(sizes.values()),
                    "cluster_sizes": dict(sorted(sizes.items())),
                    "unsettled_edges_after_rounds": residual,
                },
                ver=side(n_verified), exact=side(n_exact), bins=side(jaccard_bins), sizes=side(cluster_sizes),
                residual=side(cc["residual_edges"]))
        )
        return {"decided": decided | "Then" >> Then(new, "decisions"), "audit": audit}


def write_audit(audit: dict[str, Any], path: str) -> None:
    write_json(path, audit, indent=None)


def _size_bucket(n: int) -> str:
    if n <= 4:
        return str(n)
    if n <= 8:
        return "5-8"
    if n <= 32:
        return "9-32"
    return "33+"


# ---- connected components ------------------------------------------------------------------------

def _large_star(item: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    u, neighbours = item
    n = set(neighbours)
    m = min(n | {u})
    for v in n:
        if v > u:
            yield v, m


def _small_star(item: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    u, smaller = item
    n = set(smaller) | {u}
    m = min(n)
    for v in n:
        if v != m:
            yield v, m


def _both_ways(edge: tuple[str, str]) -> Iterator[tuple[str, str]]:
    yield edge
    yield edge[1], edge[0]


class _UnionFind(beam.CombineFn):
    """Union-find over the few edges left unsettled after the star rounds; every root is its set's minimum."""

    def create_accumulator(self) -> dict[str, str]:
        return {}

    @staticmethod
    def _find(parent: dict[str, str], x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def add_input(self, parent: dict[str, str], edge: tuple[str, str]) -> dict[str, str]:
        a, b = (self._find(parent, x) for x in edge)
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        if a != b:
            lo, hi = min(a, b), max(a, b)
            parent[hi] = lo
        return parent

    def merge_accumulators(self, accumulators: Iterable[dict[str, str]]) -> dict[str, str]:
        merged: dict[str, str] = {}
        for acc in accumulators:
            for x, p in acc.items():
                self.add_input(merged, (x, p))
        return merged

    def extract_output(self, parent: dict[str, str]) -> dict[str, str]:
        return {x: self._find(parent, x) for x in list(parent)}


class ConnectedComponents(beam.PTransform):
    """(node, component minimum) for every node of an undirected edge list."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds

    def expand(self, edges: Any) -> Any:
        # oriented (larger, smaller)
        current = edges | "Orient" >> beam.Map(lambda e: (max(e), min(e)))
        for r in range(self.rounds):
            current = (
                current
                | f"LargeIn{r}" >> beam.FlatMap(_both_ways)
                | f"LargeGroup{r}" >> beam.GroupByKey()
                | f"Large{r}" >> beam.FlatMap(_large_star)
                | f"SmallGroup{r}" >> beam.GroupByKey()
                | f"Small{r}" >> beam.FlatMap(_small_star)
            )

        def settle(item: tuple[str, dict[str, list[str]]]) -> Iterator[Any]:
            x, groups = item
            parents, children = set(groups["parents"]), set(groups["children"])
            unsettled = len(parents) > 1 or (parents and children)
            for p in parents:
                if unsettled:
                    yield beam.pvalue.TaggedOutput("residual", (x, p))
            for c in children:
                if parents:
                    yield beam.pvalue.TaggedOutput("residual", (c, x))
            yield x, min(parents) if parents else x

        nodes = (
            {"parents": current, "children": current | "Flip" >> beam.Map(lambda e: (e[1], e[0]))}
            | "ByNode" >> beam.CoGroupByKey()
            | "Settle" >> beam.FlatMap(settle).with_outputs("residual", main="parent")
        )
        resolved = nodes.residual | "Resolve" >> beam.CombineGlobally(_UnionFind())

        def root(item: tuple[str, str], uf: dict[str, str]) -> tuple[str, str]:
            x, p = item
            if x in uf:
                return x, uf[x]
            return x, uf.get(p, p)

        residual_count = nodes.residual | "CountResidual" >> beam.combiners.Count.Globally()
        return {
            "roots": nodes.parent | "Root" >> beam.Map(root, uf=beam.pvalue.AsSingleton(resolved)),
            "residual_edges": residual_count,
        }


