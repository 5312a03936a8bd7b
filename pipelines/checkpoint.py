"""Checkpoints of a curate run: what extraction and filtering made of each document, saved as it finishes.

Workers append finished rows (kept or rejected) to `OUTPUT/.work/<run key>/<unit key>/`, one pair of files per
flush: `<name>.jsonl.gz` with the rows, then `<name>.ids` with their ids. The ids file is renamed into place last,
so its presence means the rows are complete. A rerun of the same config over the same files reads each unit
again (cheap), skips the documents listed in its ids files and takes their rows from the checkpoint instead of
extracting them again (the expensive part). The folder is deleted once the run has published its output.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import time
import uuid
from typing import Any, Iterator

from .config.curate import ResumeSettings
from .files import atomic_open
from .schema import strict_json

Row = dict[str, Any]


class CheckpointError(RuntimeError):
    pass


class Checkpoints:
    """Buffered checkpoint writer of one DoFn instance."""

    def __init__(self, folder: str, settings: ResumeSettings) -> None:
        self.folder = folder
        self.settings = settings
        self.buffer: dict[str, list[tuple[str, str]]] = {}
        self.pending = 0
        self.last = time.monotonic()

    def add(self, unit: str, row: Row) -> None:
        line = json.dumps(strict_json(row), ensure_ascii=False, allow_nan=False)  # as the metadata column is
        self.buffer.setdefault(unit, []).append((row["id"], line))
        self.pending += 1
        if self.pending >= self.settings.every_docs or time.monotonic() - self.last >= self.settings.every_s:
            self.flush()

    def flush(self) -> None:
        for unit, rows in self.buffer.items():
            folder = os.path.join(self.folder, unit)
            os.makedirs(folder, exist_ok=True)
            name = os.path.join(folder, uuid.uuid4().hex)
            with atomic_open(name + ".jsonl.gz", "wb", sync=True) as raw:  # on disk before the ids that commit it
                with gzip.open(raw, "wt", encoding="utf-8", compresslevel=1) as fh:
                    fh.writelines(line + "\n" for _, line in rows)
            with atomic_open(name + ".ids") as fh:  # the commit: the rows above are complete
                fh.writelines(doc_id + "\n" for doc_id, _ in rows)
        self.buffer = {}
        self.pending = 0
        self.last = time.monotonic()


def _committed(folder: str, unit: str) -> list[str]:
    path = os.path.join(folder, unit)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(path, n[: -len(".ids")]) for n in names if n.endswith(".ids"))


def done_ids(folder: str, unit: str) -> set[str]:
    """Ids of the documents of a unit that a checkpoint holds. A piece whose data file does not hold every id
    its list names (a power loss can leave a renamed file empty) is deleted: its documents are redone."""
    out: set[str] = set()
    for base in _committed(folder, unit):
        try:
            with open(base + ".ids", encoding="ascii") as fh:
                ids = {line.strip() for line in fh if line.strip()}
            with gzip.open(base + ".jsonl.gz", "rt", encoding="utf-8") as fh:
                held = {json.loads(line)["id"] for line in fh}
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            held = set()
        if ids - held:
            for suffix in (".ids", ".jsonl.gz"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(base + suffix)
            continue
        out.update(ids)
    return out


def cached_rows(folder: str, unit: str, wanted: set[str]) -> Iterator[Row]:
    """The checkpointed rows whose id is in `wanted`, each once (a retried bundle may have saved one twice)."""
    seen: set[str] = set()
    for base in _committed(folder, unit):
        try:
            with gzip.open(base + ".jsonl.gz", "rt", encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    if row["id"] in wanted and row["id"] not in seen:
                        seen.add(row["id"])
                        yield row
        except (OSError, EOFError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {base}.jsonl.gz is unreadable ({exc}); delete {folder} and run "
                                  "again to start over") from exc
    missing = wanted - seen
    if missing:
        raise CheckpointError(f"checkpoint of unit {unit} lists {len(missing)} document(s) it does not hold; "
                              f"delete {folder} and run again to start over")
