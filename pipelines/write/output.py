"""The final write: staged units streamed into Parquet shards, with every decision applied; and publishing.

No text is shuffled. The rows of each kind (kept, rejected) are laid end to end in a fixed order (units in
order, rows in reading order, the same however files were cut into units), each taking its text bytes plus
512. Shard k of n = ceil(total / write.shard_bytes) holds the rows that start in [k, k + 1) x shard_bytes. Its
writer is sent only the decisions of the units it overlaps, reads those units' pieces in order and writes row
groups of `write.row_group_rows` rows as it goes: memory is one piece and one row group, and the bytes are the
same for any number of workers, runner or unit cuts. Each shard is written whole (a temporary name and a rename
locally, one object upload in a bucket).
"""
from __future__ import annotations

import math
import os
import shutil
from typing import Any, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from pipelines.config.curate import WriteSettings
from pipelines.runtime.decisions import NAMESPACE, Decision, Decisions, Shuffle
from pipelines.dedup.signals import normalize_url
from pipelines.runtime import storage
from pipelines.runtime.files import arrow_output, sha256_file
from pipelines.schema import KEPT_SCHEMA, REJECTED_SCHEMA
from pipelines.runtime.staging import read_staged, staged_pieces

KINDS = ("kept", "rejected")
SUCCESS = "_SUCCESS"  # written last when an output is published, removed first when it is published again
ROW_OVERHEAD = 512


def shard_name(index: int, count: int) -> str:
    return f"part-{index:05d}-of-{count:05d}.parquet"


def _rejected(table: pa.Table, decisions: dict[int, Decision]) -> list[bool]:
    """Whether each staged row ends rejected: in staging, or by a later decision."""
    return [reason is not None or (row in decisions and decisions[row].reason is not None)
            for row, reason in zip(table.column("row").to_pylist(), table.column("reason").to_pylist())]


def tally(folder: str, decisions: list[Decision]) -> dict[str, int]:
    """Bytes each kind of row of a unit takes in the shard layout."""
    table = read_staged(folder, ["reason", "text_bytes"])
    by_row = {d.row: d for d in decisions}
    out = {"kept": 0, "rejected": 0}
    for rejected, size in zip(_rejected(table, by_row), table.column("text_bytes").to_pylist()):
        out["rejected" if rejected else "kept"] += size + ROW_OVERHEAD
    return out


def make_plan(tallies: list[tuple[int, dict[str, int]]], shard_bytes: int) -> dict[str, dict[str, Any]]:
    """For each kind: where every unit's rows start, and the number of shards."""
    plan = {}
    for kind in KINDS:
        starts, at = {}, 0
        for index, sizes in sorted(tallies):
            starts[index] = at
            at += sizes[kind]
        plan[kind] = {"starts": starts, "total": at, "shards": max(1, math.ceil(at / shard_bytes))}
    return plan


def _detail(d: Decision, url: str | None) -> str | None:
    if d.reason == "dedup:url":
        return f"survivor={d.detail} url={normalize_url(url or '')}"
    if d.reason in ("dedup:exact", "dedup:minhash"):
        return f"survivor={d.detail} cluster={d.cluster}"
    return d.detail


def _finish(table: pa.Table, decisions: dict[int, Decision], kind: str) -> pa.Table:
    """The output columns of staged rows, with their decisions applied."""
    reason, detail = table.column("reason").to_pylist(), table.column("detail").to_pylist()
    cluster, size = table.column("dup_cluster_id").to_pylist(), table.column("dup_cluster_size").to_pylist()
    urls = table.column("url").to_pylist()
    for i, row in enumerate(table.column("row").to_pylist()):
        d = decisions.get(row)
        if d is None:
            continue
        if d.reason is not None:
            reason[i] = d.reason
            detail[i] = _detail(d, urls[i])
        if d.cluster is not None:
            cluster[i], size[i] = d.cluster, d.size
    schema = REJECTED_SCHEMA if kind == "rejected" else KEPT_SCHEMA
    new = {"reason": reason, "detail": detail, "dup_cluster_id": cluster, "dup_cluster_size": size}
    columns = [pa.array(new[f.name], f.type) if f.name in new else table.column(f.name).cast(f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _count(table: pa.Table, kind: str) -> None:
    """The one place every final row is counted: `<source>/kept`, or `<source>/<reason>`."""
    names = table.column("source").to_pylist()
    reasons = table.column("reason").to_pylist() if kind == "rejected" else ["kept"] * len(names)
    counts: dict[str, int] = {}
    for source, reason in zip(names, reasons):
        counts[f"{source}/{reason}"] = counts.get(f"{source}/{reason}", 0) + 1
    for name, n in counts.items():
        Metrics.counter(NAMESPACE, name).inc(n)


def _rows_of_shard(folder: str, decisions: dict[int, Decision], kind: str, start: int, lo: int,
                   hi: int) -> Iterator[pa.Table]:
    """The rows of one unit that fall in [lo, hi) of the kind's layout, finished, piece by piece."""
    at = start
    for table in staged_pieces(folder):
        take = []
        for i, (rejected, size) in enumerate(zip(_rejected(table, decisions), table.column("text_bytes").to_pylist())):
            if rejected != (kind == "rejected"):
                continue
            if lo <= at < hi:
                take.append(i)
            at += size + ROW_OVERHEAD
        if take:
            yield _finish(_rows(table, take), decisions, kind)
        if at >= hi:
            return


def _rows(table: pa.Table, take: list[int]) -> pa.Table:
    """The rows at the ascending positions `take`: a slice, no copy, where they are one run (a piece's kept rows
    mostly are), else a copy of them."""
    if take[-1] - take[0] == len(take) - 1:
        return table.slice(take[0], len(take))
    return table.take(take)


def write_shard(folder: str, kind: str, index: int, plan: dict[str, Any], units: Iterable[tuple[int, list[Decision]]],
                folders: list[str], settings: WriteSettings) -> str:
    """Write shard `index` of `kind` from the staged units it overlaps."""
    layout = plan[kind]
    lo, hi = index * settings.shard_bytes, (index + 1) * settings.shard_bytes
    path = os.path.join(folder, shard_name(index, layout["shards"]))
    schema = REJECTED_SCHEMA if kind == "rejected" else KEPT_SCHEMA
    compression = None if settings.compression == "none" else settings.compression
    level = settings.compression_level if compression in ("zstd", "gzip") else None
    size = settings.row_group_rows
    with arrow_output(path) as target:
        with pq.ParquetWriter(target, schema, compression=compression, compression_level=level) as writer:
            buffer: list[pa.Table] = []
            held = 0
            for unit, decisions in sorted(units):
                for table in _rows_of_shard(folders[unit], {d.row: d for d in decisions}, kind,
                                            layout["starts"][unit], lo, hi):
                    _count(table, kind)
                    buffer.append(table)
                    held += table.num_rows
                    if held >= size:
                        rest = pa.concat_tables(buffer)
                        while rest.num_rows >= size:
                            writer.write_table(rest.slice(0, size), row_group_size=size)
                            rest = rest.slice(size)
                        buffer, held = [rest], rest.num_rows
            if held:
                writer.write_table(pa.concat_tables(buffer), row_group_size=size)
    return path


class WriteShards(beam.PTransform):
    """(unit index, decisions) of every unit in; OUTPUT/{kept,rejected}/ shards written under `staging`."""

    def __init__(self, staging: str, folders: list[str], settings: WriteSettings) -> None:
        super().__init__()
        self.staging, self.folders, self.settings = staging, folders, settings

    def expand(self, decided: Any) -> Any:
        staging, folders, settings = self.staging, self.folders, self.settings
        plan = (
            decided
            | "Tally" >> beam.MapTuple(lambda index, decisions: (index, tally(folders[index], decisions)))
            | "Tallies" >> beam.combiners.ToList()
            | "Plan" >> beam.Map(make_plan, settings.shard_bytes)
        )
        side = beam.pvalue.AsSingleton(plan)

        def route(item: tuple[int, list[Decision]], plan: dict) -> Iterator[tuple[tuple[str, int], Any]]:
            index, decisions = item
            # a kept shard needs the rows to leave out and the clusters of its rows; a rejected one, the verdicts
            for_kind = {"kept": Decisions(d if d.reason is None else Decision(d.row, d.reason, None, None, None)
                                          for d in decisions),
                        "rejected": Decisions(d for d in decisions if d.reason is not None)}
            for kind in KINDS:
                start = plan[kind]["starts"][index]
                end = plan[kind]["starts"].get(index + 1, plan[kind]["total"])
                if end > start:  # the shards its rows start in
                    for k in range(start // settings.shard_bytes, (end - 1) // settings.shard_bytes + 1):
                        if k < plan[kind]["shards"]:
                            yield (kind, k), (index, for_kind[kind])

        every = plan | "EveryShard" >> beam.FlatMap(
            lambda plan: [((kind, k), None) for kind in KINDS for k in range(plan[kind]["shards"])])
        return (
            (decided | "Route" >> beam.FlatMap(route, side), every)
            | "Tasks" >> beam.Flatten()
            | "ByShard" >> Shuffle("write_tasks")
            | "Write" >> beam.Map(
                lambda item, plan: write_shard(os.path.join(staging, item[0][0]), item[0][0], item[0][1], plan,
                                               [u for u in item[1] if u is not None], folders, settings),
                side)
        )


def list_shards(folder: str) -> list[dict[str, Any]]:
    """rows, bytes and sha256 of every finished shard in a folder, by name."""
    out = []
    for name in storage.listdir(folder):
        if not name.endswith(".parquet"):
            continue
        path = os.path.join(folder, name)
        with storage.arrow_input(path) as source:
            rows = pq.ParquetFile(source).metadata.num_rows
        out.append({"path": name, "rows": rows, "bytes": storage.getsize(path), "sha256": sha256_file(path)})
    return out


def publish(staging: str, output: str, kinds: tuple[str, ...] = KINDS,
            names: dict[str, list[str]] | None = None) -> None:
    """Move the staged folders (kept/ and rejected/ by default) into the output folder.

    Locally each folder is swapped in whole by renames: a reader sees the old complete set or the new complete
    set, and a shard from an earlier run with a different shard count never lingers beside the new ones. In a
    bucket, which has no rename, each staged object named in `names` (the manifest's list, per kind) is copied
    to its final name, complete or not at all, then the final folder's other objects are deleted; the caller
    writes the manifest and `_SUCCESS` after this, so a reader that waits for `_SUCCESS` sees one complete set.
    Calling it again after a crash part-way finishes the job: what was published before is skipped.
    """
    if storage.is_url(output):
        _publish_objects(staging, output, kinds, names or {})
        return
    for kind in kinds:
        new, final, old = os.path.join(staging, kind), os.path.join(output, kind), os.path.join(output, f".old-{kind}")
        if not os.path.exists(new):
            continue  # published before the crash
        if os.path.exists(old):
            shutil.rmtree(old)
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(new, final)
        if os.path.exists(old):
            shutil.rmtree(old)


def _publish_objects(staging: str, output: str, kinds: tuple[str, ...], names: dict[str, list[str]]) -> None:
    for kind in kinds:
        new, final = storage.join(staging, kind), storage.join(output, kind)
        wanted = names.get(kind)
        if wanted is None:
            raise ValueError(f"publishing {kind} to a bucket needs the list of its files")
        staged = set(storage.find(new))
        for name in wanted:
            if storage.join(new, name) in staged:
                storage.copy(storage.join(new, name), storage.join(final, name))
            elif not storage.exists(storage.join(final, name)):
                raise FileNotFoundError(f"{storage.join(new, name)}: staged file missing, and not published before")
        keep = {storage.join(final, name) for name in wanted}
        for path in storage.find(final):
            if path not in keep:
                storage.remove(path)
