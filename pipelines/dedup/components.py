"""Connected components of an undirected edge list on Beam: large-star/small-star rounds, then the few edges
not yet settled resolved together by union-find."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import apache_beam as beam


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
    """{"roots": (node, component minimum) for every node of an undirected edge list, "residual": the edges
    left unsettled after the rounds (resolved by union-find)}."""

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

        return {
            "roots": nodes.parent | "Root" >> beam.Map(root, uf=beam.pvalue.AsSingleton(resolved)),
            "residual": nodes.residual,  # the edges left unsettled after the rounds
        }
