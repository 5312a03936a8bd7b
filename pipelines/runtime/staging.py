"""Staged units: where a worker writes the rows of the unit it read, once, and every later step reads them.

A unit's rows live in `OUTPUT/.work/<run key>/<unit key>/` as Parquet pieces (`piece-<first row>.parquet`, the
rows of one flush, written whole: locally through a temporary name, synced and renamed; in a bucket as one
object upload), then `facts.parquet`, the few columns the decisions read (ids, hashes, band keys, scores) of
every row in row order, then `done.json`, written last, once the whole unit is staged (with the row count of
every piece): a unit is part of the run only when its `done.json` names its pieces. The pieces are the unit's
checkpoint: a rerun skips a unit with `done.json` without reading its input, and in a unit without it skips the
records its pieces hold. Every step that decides reads the unit's facts, one small file (one GET in a bucket),
never its text; the final write reads the pieces once more, in row order.

Every piece names its run and unit in its Parquet metadata. A piece that cannot be used (empty or truncated by a
power loss or a full disk, of another schema, written by another run, or not holding the rows `done.json`
records) is found before the unit's rows are trusted; `damage` says what is wrong, `discard` drops the bad pieces
and the unit is staged again from its input, its sound pieces kept.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.runtime import storage
from pipelines.runtime.files import arrow_output, atomic_open, read_parquet
from pipelines.schema import STAGED_SCHEMA, Row, to_table

DONE = "done.json"
FACTS = "facts.parquet"
FACT_COLUMNS = ("row", "id", "reason", "text_bytes", "n_chars", "content_hash", "scores", "url_key", "date", "bands",
                "sig")
_WRITTEN: dict[str, pa.Table] = {}  # facts of the pieces this process staged, until their unit is marked done
OWNER = b"refinery.piece"  # Parquet metadata key: {"run": run key, "unit": unit key}


class CheckpointError(RuntimeError):
    """A staged unit that can neither be used nor staged again (its input is gone): one line for the user."""


def _brief(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _owner(folder: str) -> bytes:
    folder = os.path.normpath(folder)
    return json.dumps({"run": os.path.basename(os.path.dirname(folder)), "unit": os.path.basename(folder)},
                      sort_keys=True).encode()


def _read(path: str, columns: list[str] | None) -> pa.Table:
    if storage.is_url(path):  # a piece is small and read by several steps: one GET, held for the next
        return read_parquet(pa.BufferReader(storage.read_held(path)), columns)
    return read_parquet(path, columns)


def unit_folder(work: str, unit_key: str) -> str:
    return os.path.join(work, unit_key)


def write_piece(folder: str, rows: list[Row]) -> str:
    """Stage a flush of rows (each with its `row` number) as one piece; returns its path."""
    storage.makedirs(folder)
    path = os.path.join(folder, f"piece-{min(r['row'] for r in rows):010d}.parquet")
    table = to_table(rows, True, STAGED_SCHEMA).replace_schema_metadata({OWNER: _owner(folder)})
    with arrow_output(path, sync=True) as target:  # on disk before the rename that makes it part of the unit
        pq.write_table(table, target, compression="zstd", compression_level=1)
    _WRITTEN[path] = table.select(FACT_COLUMNS).replace_schema_metadata(None)
    return path


def pieces(folder: str) -> list[str]:
    return [os.path.join(folder, n) for n in storage.listdir(folder) if n.startswith("piece-") and n.endswith(".parquet")]


def mark_done(folder: str, rows: int) -> None:
    """The unit is staged: `rows` records, in the pieces there now (each checked, with its row count); their
    facts are written before `done.json`."""
    storage.makedirs(folder)
    counts, facts = {}, []
    for path in pieces(folder):
        why = check_piece(path, folder)
        if why is not None:  # written a moment ago: the disk is failing under us
            raise OSError(f"staged piece {path} is damaged right after it was written: {why}")
        table = _WRITTEN.pop(path, None)
        if table is None:  # staged by an earlier run: its fact columns alone (ranged reads in a bucket)
            with storage.arrow_input(path) as source:
                table = read_parquet(source, list(FACT_COLUMNS)).replace_schema_metadata(None)
        counts[os.path.basename(path)] = table.num_rows
        facts.append(table)
    if sum(counts.values()) != rows:
        raise OSError(f"{folder}: the pieces hold {sum(counts.values())} rows, the unit has {rows}")
    schema = STAGED_SCHEMA.remove_metadata()
    table = pa.concat_tables(facts) if facts else pa.schema([schema.field(c) for c in FACT_COLUMNS]).empty_table()
    table = table.sort_by("row").replace_schema_metadata({OWNER: _owner(folder)})
    with arrow_output(os.path.join(folder, FACTS), sync=True) as target:
        pq.write_table(table, target, compression="zstd", compression_level=1)
    with atomic_open(os.path.join(folder, DONE), sync=True) as fh:
        json.dump({"rows": rows, "pieces": counts}, fh)


def is_done(folder: str) -> bool:
    return storage.exists(os.path.join(folder, DONE))


def check_piece(path: str, folder: str) -> str | None:
    """Why the piece cannot be used as a piece of the unit staged in `folder`, or None when it can."""
    try:
        with storage.arrow_input(path) as source:
            schema = pq.ParquetFile(source).schema_arrow
    except (OSError, pa.ArrowException) as exc:
        return f"cannot be read ({_brief(exc)})"
    owner = (schema.metadata or {}).get(OWNER)
    if owner is None:
        return "not a refinery staged piece"
    if owner != _owner(folder):
        return f"written by another run or unit ({owner.decode(errors='replace')})"
    if not schema.remove_metadata().equals(STAGED_SCHEMA):
        return "not the staged schema"
    return None


def damage(folder: str) -> list[str]:
    """What is wrong with a unit marked staged, one line per problem; empty when every piece is sound and the
    pieces are the ones `done.json` lists, with its row counts."""
    try:
        listed = json.loads(storage.read_bytes(os.path.join(folder, DONE)))["pieces"]
        assert isinstance(listed, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return [f"{DONE} cannot be read"]
    problems, found = [], set()
    for path in pieces(folder):
        name = os.path.basename(path)
        found.add(name)
        why = check_piece(path, folder)
        if why is None and name not in listed:
            why = f"not listed in {DONE}"
        if why is None:
            try:  # the footer may be sound over damaged pages: read a column through
                n = _read(path, ["row"]).num_rows
                if n != listed[name]:
                    why = f"holds {n} rows, {DONE} records {listed[name]}"
            except (OSError, pa.ArrowException) as exc:
                why = f"cannot be read ({_brief(exc)})"
        if why is not None:
            problems.append(f"{name}: {why}")
    problems += [f"{name}: missing" for name in sorted(set(listed) - found)]
    why = _check_facts(folder, sum(listed.values()))
    if why is not None:
        problems.append(f"{FACTS}: {why}")
    return problems


def _check_facts(folder: str, rows: int) -> str | None:
    try:
        table = _read(os.path.join(folder, FACTS), ["row"])
    except FileNotFoundError:
        return "missing"
    except (OSError, pa.ArrowException) as exc:
        return f"cannot be read ({_brief(exc)})"
    if (table.schema.metadata or {}).get(OWNER) != _owner(folder):
        return "written by another run or unit"
    if table.num_rows != rows:
        return f"holds {table.num_rows} rows, {DONE} records {rows}"
    return None


def discard(folder: str, problems: list[str]) -> None:
    """Make a damaged unit a partly staged one: drop `done.json`, its facts and every piece a problem names."""
    storage.remove(os.path.join(folder, DONE))
    storage.remove(os.path.join(folder, FACTS))
    for problem in problems:
        name = problem.split(":", 1)[0]
        if name.startswith("piece-"):
            storage.remove(os.path.join(folder, name))


def finished_ids(folder: str, problems: list[str] | None = None) -> set[str]:
    """Ids of the rows the unit's pieces hold. A piece that cannot be used (a power loss can leave a renamed file
    empty; see `check_piece`) is deleted, and its problem added to `problems`: its records are done again."""
    out: set[str] = set()
    for path in pieces(folder):
        why = check_piece(path, folder)
        if why is None:
            try:
                out.update(_read(path, ["id"]).column("id").to_pylist())
                continue
            except (OSError, pa.ArrowException) as exc:
                why = f"cannot be read ({_brief(exc)})"
        if problems is not None:
            problems.append(f"{os.path.basename(path)}: {why}")
        storage.remove(path)
    return out


def read_staged(folder: str, columns: list[str], rows: Any = None) -> pa.Table:
    """The unit's rows (only `columns`, plus `row`) in row order; with `rows`, only those row numbers. Columns
    that are all facts are read from the unit's facts, in one read."""
    cols = list(dict.fromkeys(["row"] + columns))
    if set(cols) <= set(FACT_COLUMNS):
        try:
            table = _read(os.path.join(folder, FACTS), cols).replace_schema_metadata(None)
        except (OSError, pa.ArrowException) as exc:
            raise CheckpointError(f"staged facts {os.path.join(folder, FACTS)} became unreadable during the run "
                                  f"({_brief(exc)}); run the same command again: its unit is staged again from "
                                  "its input") from None
        return _only(table, rows)
    tables = [_only(table, rows) for table in staged_pieces(folder, cols)]
    if not tables:
        return STAGED_SCHEMA.empty_table().select(cols)
    return pa.concat_tables(tables)


def _only(table: pa.Table, rows: Any) -> pa.Table:
    """The table's rows whose row numbers are in `rows` (all of them when `rows` is None)."""
    if rows is None:
        return table
    return table.filter(pc.is_in(table.column("row"), value_set=pa.array(rows, pa.int64())))


def staged_pieces(folder: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The unit's pieces one at a time, in row order (pieces hold disjoint, ascending runs of rows). A piece that
    went bad after its unit was checked is one line for the user: the next run stages its unit again."""
    for path in pieces(folder):
        try:
            table = _read(path, columns).replace_schema_metadata(None)
        except (OSError, pa.ArrowException) as exc:
            raise CheckpointError(f"staged piece {path} became unreadable during the run "
                                  f"({_brief(exc)}); run the same "
                                  "command again: its unit is staged again from its input") from None
        yield table.sort_by("row") if table.num_rows > 1 else table
