"""The small records dedup shuffles, against plain Python references (hypothesis chooses the inputs)."""
from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.dedup.keyed import KEYED, _choose, _repeated
from pipelines.dedup.packed import pack, unpack
import pickle

from pipelines.runtime.decisions import Decision, Decisions, UnitInfo, merge, offsets, unit_of

units = st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=40), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(units, st.integers(1, 9))
def test_packed_keys_come_back_and_shared_keys_are_found(unit_keys, partitions):
    # a few keys repeated on purpose, across and within units
    unit_keys = [keys + keys[:1] if i % 2 else keys for i, keys in enumerate(unit_keys)]
    parts: dict[int, list] = {}
    for index, keys in enumerate(unit_keys):
        rows = np.arange(len(keys), dtype=np.int64)
        for p, part in pack(index, rows, np.array(keys, dtype=np.uint64), partitions):
            parts.setdefault(p, []).append(part)
    back = set()
    shared = set()
    for group in parts.values():
        index, rows, keys = unpack(group)
        back.update(zip(index.tolist(), rows.tolist()))
        shared.update((i, int(r)) for i, rs in _repeated(group) for r in rs)
    expected = {(i, r) for i, keys in enumerate(unit_keys) for r in range(len(keys))}
    assert back == expected
    # a key is shared when another row has the same key (32 high bits within a partition)
    seen = Counter((k % partitions, k >> 32) for keys in unit_keys for k in keys)
    assert shared == {(i, r) for i, keys in enumerate(unit_keys) for r, k in enumerate(keys)
                      if seen[(k % partitions, k >> 32)] > 1}


records = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 50), st.integers(0, 2**63),
                             st.integers(0, 5)), min_size=1, max_size=40, unique_by=lambda r: r[3])


@settings(max_examples=60, deadline=None)
@given(records)
def test_one_survivor_per_key_the_best_ranked(recs):
    a = np.zeros(len(recs), dtype=KEYED)
    for i, (key, quality, length, ident, unit) in enumerate(recs):
        a[i] = (key, 0, quality, length, ident, 0, unit, i)
    decided = [d for _, ds in _choose(a, False, "dedup:exact", True) for d in ds]
    groups: dict[int, list] = {}
    for i, rec in enumerate(recs):
        groups.setdefault(rec[0], []).append((-rec[1], -rec[2], rec[3], i))
    expected_rejected = set()
    for members in groups.values():
        if len(members) > 1:
            best = min(members)
            expected_rejected |= {m[3] for m in members if m is not best}
    assert {d.row for d in decided if d.reason} == expected_rejected
    survivors = {d.row for d in decided if d.reason is None}
    assert survivors == {min(m)[3] for m in groups.values() if len(m) > 1}
    assert all(d.size == len(groups[recs[d.row][0]]) for d in decided)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=8), st.data())
def test_global_row_numbers_map_back_to_units(sizes, data):
    starts = offsets([(i, UnitInfo("s", n, 0)) for i, n in enumerate(sizes)], len(sizes))
    pairs = [(i, r) for i, n in enumerate(sizes) for r in range(n)]
    if not pairs:
        return
    chosen = data.draw(st.lists(st.sampled_from(pairs), min_size=1))
    g = np.array([starts[i] + r for i, r in chosen], dtype=np.int64)
    index, rows = unit_of(g, starts)
    assert list(zip(index.tolist(), rows.tolist())) == chosen


def test_a_later_decision_replaces_an_earlier_one():
    first = [Decision(3, None, None, "c", 2), Decision(1, "dedup:exact", "s", "c", 2)]
    later = [Decision(3, "dedup:minhash", "t", "m", 4)]
    assert merge(first, later) == [first[1], later[0]]


ids = st.one_of(st.none(), st.text("0123456789abcdef", min_size=32, max_size=32).filter(lambda h: h != "0" * 32),
                st.text(max_size=20))
decision = st.builds(Decision, st.integers(0, 2**32 - 1), st.one_of(st.none(), st.sampled_from(
    ["dedup:exact", "dedup:url", "dedup:minhash", "classify:quality_web"])), ids, ids,
    st.one_of(st.none(), st.integers(1, 10**6)))


@settings(max_examples=80, deadline=None)
@given(st.lists(decision, max_size=30))
def test_decisions_travel_packed_and_come_back_whole(decisions):
    packed = Decisions(decisions)
    assert list(pickle.loads(pickle.dumps(packed))) == decisions
