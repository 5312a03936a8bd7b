"""Near duplicates by MinHash: band keys grouped into LSH buckets, each candidate pair checked on the rows'
staged signatures (the pairs near the threshold on their shingles, for the exact Jaccard), clusters as
connected components (components.py), one survivor per cluster; and the audit of one run."""
from __future__ import annotations

import zlib
from collections import Counter
from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from pipelines.config.curate import DedupSettings, MinHashSettings
from pipelines.dedup.components import ConnectedComponents
from pipelines.dedup.minhash import catch_probability, jaccard, s_curve_threshold, shingle_hashes
from pipelines.dedup.packed import groups, open_rows, pack, partitioned, unpack
from pipelines.dedup.signals import survivor_key
from pipelines.runtime.decisions import NAMESPACE, CoGroup, Decision, Decisions, Shuffle, Then, unit_of
from pipelines.runtime.files import write_json
from pipelines.runtime.staging import read_staged


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
    index, rows, keys = unpack(parts)
    g = starts[index] + rows
    order = np.lexsort((g, keys))
    g, keys = g[order], keys[order]
    pairs = [pair for members in groups([keys]) for pair in bucket_pairs(g[members].tolist(), max_bucket)]
    if pairs:
        out = np.array(pairs, dtype=PAIR)
        yield from partitioned(out, out["a"].astype(np.uint64), partitions)


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
            cols = open_rows(folders[index], decisions, ["bands"])
            has = [i for i, b in enumerate(cols["bands"]) if b is not None]
            if has:
                keys = np.frombuffer(b"".join(cols["bands"][i] for i in has), dtype="<u8")
                yield from pack(index, np.repeat(cols["row"][has], s.bands), keys, partitions)

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

        # ---- the audit: one dict, summed from small tagged counts in one combine
        audit = (
            (candidates | "TallyCandidates" >> beam.Map(lambda n: ("candidate_pairs", n)),
             verified | "TallyVerified" >> beam.Map(lambda _: ("verified_pairs", 1)),
             checked.scored | "TallyExact" >> beam.Map(lambda _: ("checked_exactly", 1)),
             scored | "TallyBins" >> beam.Map(lambda p: (f"bin {min(int(p[2] * 10), 9) / 10:.1f}", 1)),
             decisions | "TallySizes" >> beam.FlatMap(
                 lambda kv: [(f"size {_size_bucket(kv[1])}", 1)] if kv[0] == "sizes" else []),
             cc["residual"] | "TallyResidual" >> beam.Map(lambda _: ("unsettled_edges_after_rounds", 1)))
            | "Tallies" >> beam.Flatten()
            | "Sum" >> beam.CombineGlobally(_Tally())
            | "Audit" >> beam.Map(_audit, s)
        )
        return {"decided": decided | "Then" >> Then(new, "decisions"), "audit": audit}


class _Tally(beam.CombineFn):
    """Sums of (name, count) pairs: the audit's counts, Jaccard bins and cluster sizes in one pass."""

    def create_accumulator(self) -> Counter[str]:
        return Counter()

    def add_input(self, acc: Counter[str], item: tuple[str, int]) -> Counter[str]:
        acc[item[0]] += item[1]
        return acc

    def merge_accumulators(self, accumulators: Iterable[Counter[str]]) -> Counter[str]:
        merged: Counter[str] = Counter()
        for acc in accumulators:
            merged.update(acc)
        return merged

    def extract_output(self, acc: Counter[str]) -> dict[str, int]:
        return dict(acc)


def _audit(tally: dict[str, int], s: MinHashSettings) -> dict[str, Any]:
    cand, ver = tally.get("candidate_pairs", 0), tally.get("verified_pairs", 0)
    bins = {k.split(" ", 1)[1]: v for k, v in tally.items() if k.startswith("bin ")}
    sizes = {k.split(" ", 1)[1]: v for k, v in tally.items() if k.startswith("size ")}
    return {
        "settings": {"ngram": s.ngram, "bands": s.bands, "rows": s.rows, "threshold": s.threshold, "seed": s.seed,
                     "exact_margin": s.exact_margin, "cc_rounds": s.cc_rounds, "max_bucket": s.max_bucket},
        "s_curve_threshold": round(s_curve_threshold(s.bands, s.rows), 4),
        "catch_probability": {f"{x:.2f}": round(catch_probability(x, s.bands, s.rows), 4)
                              for x in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)},
        "candidate_pairs": cand,
        "verified_pairs": ver,
        "candidate_precision": round(ver / cand, 4) if cand else None,
        "candidate_jaccard_histogram": dict(sorted(bins.items())),
        "checked_exactly": tally.get("checked_exactly", 0),
        "clusters": sum(sizes.values()),
        "cluster_sizes": dict(sorted(sizes.items())),
        "unsettled_edges_after_rounds": tally.get("unsettled_edges_after_rounds", 0),
    }


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
