"""Deduplication stages as Beam transforms: exact text, URL, and MinHash near-duplicates.

Each stage takes documents and returns (kept, rejected) PCollections; MinHash also returns an audit. The
survivor of a cluster is the document with the highest quality score (when classifiers ran), then the longest
text, then the smallest id. MinHash never needs one worker to hold all documents or all edges: band keys are
grouped with GroupByKey, candidate pairs are checked against their exact shingle Jaccard through two joins, and
clusters are connected components found by large-star/small-star rounds, with only the few edges that have not
settled after the last round resolved together.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from .config.curate import DedupSettings, MinHashSettings
from .files import write_json
from .minhash import band_keys, catch_probability, jaccard, s_curve_threshold, shingle_hashes, signatures
from .schema import reject

Row = dict[str, Any]
REJECTED = "rejected"


def quality(doc: Row, score_name: str | None) -> float:
    scores = doc.get("scores") or {}
    if score_name:
        return float(scores.get(score_name, float("-inf")))
    return max((v for k, v in scores.items() if k.startswith("quality")), default=0.0)


def survivor_key(doc: Row, score_name: str | None) -> tuple[float, int, str]:
    """Smaller is better: highest quality, then longest text, then smallest id."""
    return (-quality(doc, score_name), -len(doc["text"]), doc["id"])


def _rejected(row: Row) -> Any:
    Metrics.counter("refinery", f"{row['source']}/{row['reason']}").inc()
    return beam.pvalue.TaggedOutput(REJECTED, row)


# ---- exact ---------------------------------------------------------------------------------------

class ExactDedup(beam.PTransform):
    """Documents with the same normalised-text hash: one survivor, the rest `dedup:exact`."""

    def __init__(self, settings: DedupSettings) -> None:
        super().__init__()
        self.score_name = settings.quality_score

    def expand(self, docs: Any) -> Any:
        score_name = self.score_name

        def choose(content_hash: str, group: Iterable[Row]) -> Iterator[Any]:
            members = sorted(group, key=lambda d: survivor_key(d, score_name))
            survivor = members[0]
            for doc in members:
                doc["dup_cluster_id"] = content_hash
                doc["dup_cluster_size"] = len(members)
            yield survivor
            for doc in members[1:]:
                yield _rejected(reject(doc, "dedup:exact", f"survivor={survivor['id']} cluster={content_hash}"))

        return (
            docs
            | "ByHash" >> beam.Map(lambda d: (d["content_hash"], d))
            | "Group" >> beam.GroupByKey()
            | "Choose" >> beam.FlatMapTuple(choose).with_outputs(REJECTED, main="kept")
        )


# ---- URL -----------------------------------------------------------------------------------------

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


def _date(doc: Row) -> str:
    meta = doc.get("metadata") or {}
    return str(meta.get("warc_date") or meta.get("date") or "")


class UrlDedup(beam.PTransform):
    """Documents with the same normalised URL: keep the newest (or the best), the rest `dedup:url`."""

    def __init__(self, settings: DedupSettings) -> None:
        super().__init__()
        self.score_name, self.keep = settings.quality_score, settings.url_keep

    def expand(self, docs: Any) -> Any:
        score_name, keep = self.score_name, self.keep

        def choose(url: str, group: Iterable[Row]) -> Iterator[Any]:
            members = sorted(group, key=lambda d: survivor_key(d, score_name))
            if keep == "newest":
                members.sort(key=_date, reverse=True)  # stable: ties keep the survivor order
            survivor = members[0]
            yield survivor
            for doc in members[1:]:
                yield _rejected(reject(doc, "dedup:url", f"survivor={survivor['id']} url={url}"))

        split = docs | "HasUrl" >> beam.Partition(lambda d, _: 0 if d.get("url") else 1, 2)
        chosen = (
            split[0]
            | "ByUrl" >> beam.Map(lambda d: (normalize_url(d["url"]), d))
            | "Group" >> beam.GroupByKey()
            | "Choose" >> beam.FlatMapTuple(choose).with_outputs(REJECTED, main="kept")
        )
        kept = (chosen.kept, split[1]) | "Kept" >> beam.Flatten()
        return {"kept": kept, REJECTED: chosen[REJECTED]}


# ---- MinHash -------------------------------------------------------------------------------------

class _Sketch(beam.DoFn):
    """A batch of documents in, band keys, shingle hashes and survivor ranks out."""

    def __init__(self, settings: MinHashSettings, score_name: str | None) -> None:
        self.s, self.score_name = settings, score_name

    def process(self, batch: list[Row]) -> Iterator[Any]:
        s = self.s
        shingles = [shingle_hashes(d["text"], s.ngram) for d in batch]
        have = [i for i, sh in enumerate(shingles) if len(sh)]
        sigs = signatures([shingles[i] for i in have], s.bands * s.rows, s.seed)
        for i, sig in zip(have, sigs):
            doc = batch[i]
            for key in band_keys(sig, s.bands, s.rows):
                yield beam.pvalue.TaggedOutput("bands", (key, doc["id"]))
            yield beam.pvalue.TaggedOutput("shingles", (doc["id"], shingles[i]))
            yield beam.pvalue.TaggedOutput("ranks", (doc["id"], (survivor_key(doc, self.score_name),
                                                                 doc.get("dup_cluster_size") or 1)))
        Metrics.counter("refinery", "dedup/no_shingles").inc(len(batch) - len(have))


def bucket_pairs(ids: Iterable[str], max_bucket: int) -> Iterator[tuple[str, str]]:
    """Candidate pairs of one LSH bucket, (smaller id, larger id).

    A bucket of up to max_bucket documents gives every pair; a larger one pairs each member with the
    bucket's first and with its predecessor, which keeps the bucket connected in O(size) pairs.
    """
    members = sorted(set(ids))
    if len(members) <= max_bucket:
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                yield a, b
        return
    Metrics.counter("refinery", "dedup/capped_buckets").inc()
    first = members[0]
    for i in range(1, len(members)):
        yield first, members[i]
        if i > 1:
            yield members[i - 1], members[i]


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


def _size_bucket(n: int) -> str:
    if n <= 4:
        return str(n)
    if n <= 8:
        return "5-8"
    if n <= 32:
        return "9-32"
    return "33+"


class MinHashDedup(beam.PTransform):
    """Near-duplicate removal; returns {"kept", "rejected", "audit"} (the audit is one dict)."""

    def __init__(self, settings: DedupSettings) -> None:
        super().__init__()
        self.s, self.score_name = settings.minhash, settings.quality_score

    def expand(self, docs: Any) -> Any:
        s = self.s
        sketch = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=256)
            | "Sketch" >> beam.ParDo(_Sketch(s, self.score_name)).with_outputs("bands", "shingles", "ranks")
        )
        candidates = (
            sketch.bands
            | "Buckets" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(lambda kv: bucket_pairs(kv[1], s.max_bucket))
            | "Distinct" >> beam.Distinct()
        )

        def with_left(item: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, np.ndarray]]]:
            a, g = item
            for sh in g["s"]:
                for b in g["pairs"]:
                    yield b, (a, sh)

        def score(item: tuple[str, dict[str, list]]) -> Iterator[tuple[str, str, float]]:
            b, g = item
            for sh_b in g["s"]:
                for a, sh_a in g["left"]:
                    yield a, b, jaccard(sh_a, sh_b)

        left = (
            {"s": sketch.shingles, "pairs": candidates}
            | "JoinLeft" >> beam.CoGroupByKey()
            | "Left" >> beam.FlatMap(with_left)
        )
        scored = (
            {"s": sketch.shingles, "left": left}
            | "JoinRight" >> beam.CoGroupByKey()
            | "Jaccard" >> beam.FlatMap(score)
        )
        verified = scored | "Verify" >> beam.Filter(lambda p: p[2] >= s.threshold)
        cc = verified | "Edges" >> beam.Map(lambda p: (p[0], p[1])) | "Components" >> ConnectedComponents(s.cc_rounds)

        def decide(root: str, members: Iterable[tuple[str, tuple]]) -> Iterator[tuple[str, dict]]:
            ranked = sorted(members, key=lambda m: m[1][0])
            survivor = ranked[0][0]
            size = sum(m[1][1] for m in ranked)
            for doc_id, _ in ranked:
                yield doc_id, {"cluster": root, "size": size, "survivor": survivor, "members": len(ranked)}

        decisions = (
            {"root": cc["roots"], "rank": sketch.ranks}
            | "JoinRank" >> beam.CoGroupByKey()
            | "RootRank" >> beam.FlatMap(lambda kv: [(r, (kv[0], rk)) for r in kv[1]["root"] for rk in kv[1]["rank"]])
            | "ByCluster" >> beam.GroupByKey()
            | "Decide" >> beam.FlatMapTuple(decide)
        )

        def route(item: tuple[str, dict[str, list]]) -> Iterator[Any]:
            _, g = item
            for doc in g["doc"]:
                if not g["decision"]:
                    yield doc
                    continue
                d = g["decision"][0]
                doc["dup_cluster_id"] = d["cluster"]
                doc["dup_cluster_size"] = d["size"]
                if d["survivor"] == doc["id"]:
                    yield doc
                else:
                    yield _rejected(reject(doc, "dedup:minhash", f"survivor={d['survivor']} cluster={d['cluster']}"))

        routed = (
            {"doc": docs | "ById" >> beam.Map(lambda d: (d["id"], d)), "decision": decisions}
            | "JoinDocs" >> beam.CoGroupByKey()
            | "Route" >> beam.FlatMap(route).with_outputs(REJECTED, main="kept")
        )

        # ---- the audit: one dict
        count = beam.combiners.Count.Globally
        n_candidates = candidates | "CountCandidates" >> count()
        n_verified = verified | "CountVerified" >> count()
        jaccard_bins = (
            scored
            | "Bin" >> beam.Map(lambda p: f"{min(int(p[2] * 10), 9) / 10:.1f}")
            | "CountBins" >> beam.combiners.Count.PerElement()
            | "Bins" >> beam.combiners.ToDict()
        )
        cluster_sizes = (
            decisions
            | "Survivors" >> beam.Filter(lambda kv: kv[0] == kv[1]["survivor"])
            | "Members" >> beam.Map(lambda kv: _size_bucket(kv[1]["members"]))
            | "CountSizes" >> beam.combiners.Count.PerElement()
            | "Sizes" >> beam.combiners.ToDict()
        )
        side = beam.pvalue.AsSingleton
        audit = (
            n_candidates
            | "Audit" >> beam.Map(
                lambda cand, ver, bins, sizes, residual: {
                    "settings": {"ngram": s.ngram, "bands": s.bands, "rows": s.rows, "threshold": s.threshold,
                                 "seed": s.seed, "cc_rounds": s.cc_rounds, "max_bucket": s.max_bucket},
                    "s_curve_threshold": round(s_curve_threshold(s.bands, s.rows), 4),
                    "catch_probability": {f"{x:.2f}": round(catch_probability(x, s.bands, s.rows), 4)
                                          for x in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)},
                    "candidate_pairs": cand,
                    "verified_pairs": ver,
                    "candidate_precision": round(ver / cand, 4) if cand else None,
                    "candidate_jaccard_histogram": dict(sorted(bins.items())),
                    "clusters": sum(sizes.values()),
                    "cluster_sizes": dict(sorted(sizes.items())),
                    "unsettled_edges_after_rounds": residual,
                },
                ver=side(n_verified), bins=side(jaccard_bins), sizes=side(cluster_sizes),
                residual=side(cc["residual_edges"]))
        )
        return {"kept": routed.kept, REJECTED: routed[REJECTED], "audit": audit}


def write_audit(audit: dict[str, Any], path: str) -> None:
    write_json(path, audit, indent=None)
