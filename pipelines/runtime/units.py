"""The first step of curate: one worker takes a work unit from its input to its staged rows.

It reads the unit, applies opt-outs, extracts, filters, scores with the quality classifiers and computes what
dedup needs (content hash, URL key, MinHash band keys), then stages every row, kept so far or rejected, in
pieces of `resume.every_docs` rows (or `resume.every_s` seconds). The text is written here and nowhere else
until the final write reads it back. A unit already staged by an earlier run of the same config is not read
again; one staged in part is read again, its staged records skipped. What leaves the worker is one small
`UnitInfo` per unit. A unit whose staged pieces are damaged is staged again from its input, its sound pieces
kept, and said so (the `units_restaged` counter, and a note the driver puts in stats.json).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.filter.classify import Scorer
from pipelines.config.curate import CurateConfig
from pipelines.runtime.decisions import DATA, NAMESPACE, UnitInfo
from pipelines.dedup.minhash import import_minhash
from pipelines.dedup.signals import sketch, url_date, url_key
from pipelines.extract.extract import Extract
from pipelines.filter.filters import filter_stages
from pipelines.filter.optout import Optout
from pipelines.runtime import stages
from pipelines.runtime.claims import Claims
from pipelines.runtime.later import import_later, working
from pipelines.runtime.progress import Progress
from pipelines.read.common import brief
from pipelines.read.readers import read_file
from pipelines.extract.sandbox import Interrupted
from pipelines.schema import Row, is_rejected, new_doc, reject, strict_fields
from pipelines.read.splits import Unit
from pipelines.runtime import storage
from pipelines.runtime.files import write_json
from pipelines.runtime.staging import (CheckpointError, damage, discard, finished_ids, is_done, mark_done, read_staged,
                                       unit_folder, write_piece)

RESTAGED = "restaged"  # the folder, under the progress folder, of one note per unit staged again


def restaged_notes(progress_dir: str) -> list[dict[str, Any]]:
    """The notes of the units this run staged again, in unit order."""
    folder = os.path.join(progress_dir, RESTAGED)
    notes = []
    for name in storage.listdir(folder):
        notes.append(json.loads(storage.read_bytes(os.path.join(folder, name))))
    return sorted(notes, key=lambda n: n["index"])


def guarded(rows: Iterator[Row], source: Any, uri: str, unit: Unit) -> Iterator[Row]:
    """A reader's rows; an exception a reader did not turn into a row itself (a bug, or a library failing in a
    way it does not document) becomes one `read:error` row for the rest of the unit, not the job's end."""
    n = 0
    try:
        for row in rows:
            n += 1
            yield row
    except Exception as exc:  # noqa: BLE001
        doc = new_doc(source=source.name, source_uri=uri, locator=f"unit:{unit.start}:after:{n}", fmt=source.format)
        yield reject(doc, "read:error", f"{brief(exc)}; rest of the file (from record {n}) not read")


class StageUnit(beam.DoFn):
    """(unit index, Unit) in, (unit index, UnitInfo) out; the unit's rows staged under `work`, in the folder named
    by `keys[index]` (the unit's key when the driver planned the run)."""

    def __init__(self, cfg: CurateConfig, work: str, keys: list[str], progress_dir: str | None,
                 claims: Claims | None = None) -> None:
        self.cfg, self.work, self.keys, self.progress_dir = cfg, work, keys, progress_dir
        self.claims = claims  # with a board of claims, a worker done with its units stages units still free

    def setup(self) -> None:
        cfg = self.cfg
        self.sources = {s.name: s for s in cfg.sources}
        self.extract = Extract(cfg.extract, on_page=self._on_page, on_repeat=self._on_repeat)
        self.before = [Optout(cfg.optout)]  # the stages a row passes before extraction is started for it
        self.stages = [self.extract, *filter_stages(cfg)]
        self.scorer = Scorer(cfg.classifiers) if cfg.classifiers.enabled else None
        self.minhash = cfg.dedup.minhash if cfg.dedup.enabled and cfg.dedup.minhash.enabled else None
        self.progress = Progress(self.progress_dir, "read")
        if self.minhash is not None:
            import_later(import_minhash, first=True)  # imported at the first flush, it stalls this worker
        working()

    def process(self, item: tuple[int, Unit]) -> Iterator[tuple[int, UnitInfo]]:
        index, unit = item
        # a unit claimed by another worker, done with its own, is staged there (finish_bundle)
        if self.claims is None or self.claims.claim(index):
            yield from self._unit(index, unit)

    def _unit(self, index: int, unit: Unit) -> Iterator[tuple[int, UnitInfo]]:
        key = self.keys[index]
        folder = unit_folder(self.work, key)
        problems: list[str] = []
        if is_done(folder):
            problems = damage(folder)
            if problems:
                discard(folder, problems)
        resumed = is_done(folder)
        if not resumed:
            self._stage(unit, key, folder, problems)
        if problems:
            self._restaged(index, unit, key, problems)
        table = read_staged(folder, ["text_bytes"])
        rows = table.num_rows
        if resumed:  # read from its pieces alone
            Metrics.counter(NAMESPACE, f"{unit.source}/units_resumed").inc()
            Metrics.counter(NAMESPACE, f"{unit.source}/resumed").inc(rows)
        text_bytes = sum(table.column("text_bytes").to_pylist())
        Metrics.counter(NAMESPACE, f"{unit.source}/read").inc(rows)
        Metrics.counter(DATA, "text_bytes").inc(text_bytes)
        yield index, UnitInfo(unit.source, rows, text_bytes)

    def _stage(self, unit: Unit, key: str, folder: str, problems: list[str]) -> None:
        source = self.sources[unit.source]
        done = finished_ids(folder, problems)
        if unit.key() != key:  # the input was deleted or rewritten after the driver planned the run
            span = "" if unit.whole else f", bytes {unit.start}-{unit.end if unit.end is not None else 'end'}"
            damaged = f"; its staged pieces are damaged ({problems[0]})" if problems else ""
            raise CheckpointError(f"{unit.path}: the input of unit {key} ({unit.source}{span}) is gone or changed "
                                  f"since the run was planned{damaged}; restore the input, or delete {self.work} and "
                                  "run again to start over")
        settings = self.cfg.resume
        buffer: list[Row] = []
        last = time.monotonic()
        n = 0
        uri = self.cfg.uri(unit.path)
        rows = guarded(read_file(source, unit.path, uri, self.cfg.extract, unit.start, unit.end), source, uri, unit)
        for position, row in self._ahead(rows, done, source):
            n = position + 1
            if row is None:  # staged before a crash
                if buffer:  # pieces hold unbroken runs of rows
                    self._flush(folder, buffer)
                    buffer, last = [], time.monotonic()
                continue
            row = self._process(row)
            row["row"] = position
            buffer.append(row)
            if len(buffer) >= settings.every_docs or time.monotonic() - last >= settings.every_s:
                self._flush(folder, buffer)
                buffer, last = [], time.monotonic()
        if buffer:
            self._flush(folder, buffer)
        mark_done(folder, n)
        Metrics.counter(NAMESPACE, f"{unit.source}/resumed").inc(len(done))
        self.progress.add(files=1, records=n, resumed=len(done))

    def _ahead(self, rows: Iterator[Row], done: set[str], source: Any) -> Iterator[tuple[int, Row | None]]:
        """(position, row) for each record of the unit, None for a row staged before a crash, each row through
        the stages before extraction. One record is read ahead and handed to the extract stage (Extract.ahead):
        the extractor child starts on its page as soon as it is done with the page before, while this worker runs
        that page's filters."""
        held: tuple[int, Row | None] | None = None
        for position, row in enumerate(rows):
            item = (position, None if row["id"] in done else self._before(strict_fields(row), source))
            if held is not None:
                self.extract.ahead(item[1] if item[1] is not None and not is_rejected(item[1]) else None)
                yield held
            held = item
        if held is not None:
            self.extract.ahead(None)
            yield held

    def _before(self, row: Row, source: Any) -> Row:
        row["license"] = row.get("license") or source.license
        row["consent"] = row.get("consent") or source.consent
        self.source = source.name
        return self._guard(row, self.before)

    def _process(self, row: Row) -> Row:
        out = self._guard(row, self.stages)
        self.progress.add(documents=1, passed=0 if is_rejected(out) else 1)
        return out

    def _guard(self, row: Row, chain: list) -> Row:
        if is_rejected(row):
            return row
        try:
            return stages.run(row, chain)
        except Interrupted:
            raise  # the job is stopping: this document is redone by the next run, not given a verdict
        except Exception as exc:  # noqa: BLE001  (one document's failure is that document's row)
            return reject(row, "extract:error", f"{brief(exc)} (a refinery bug: please report it)")

    def _flush(self, folder: str, rows: list[Row]) -> None:
        passed = [r for r in rows if not is_rejected(r)]
        if self.scorer is not None and passed:
            self.scorer(passed)
        if self.minhash is not None:
            sketch(rows, self.minhash)
        for r in rows:
            r.pop("_html", None)
            r.pop("_pdf", None)
            text = r.get("text")
            r["text_bytes"] = len(text.encode("utf-8", "surrogatepass")) if text else 0
            if not is_rejected(r):
                r["url_key"] = url_key(r.get("url"))
                r["date"] = url_date(r)
        write_piece(folder, rows)

    def _restaged(self, index: int, unit: Unit, key: str, problems: list[str]) -> None:
        Metrics.counter(NAMESPACE, f"{unit.source}/units_restaged").inc()
        if self.progress_dir is not None:
            note = {"index": index, "unit": key, "source": unit.source, "path": unit.path, "start": unit.start,
                    "end": unit.end, "problems": problems}
            storage.makedirs(os.path.join(self.progress_dir, RESTAGED))
            write_json(os.path.join(self.progress_dir, RESTAGED, f"{key}.json"), note)

    def _on_repeat(self) -> None:
        Metrics.counter(NAMESPACE, f"{self.source}/repeated_pages").inc()

    def _on_page(self, page: dict) -> None:
        self.progress.add(pages=1, ocr_pages=1 if page["method"] == "ocr" else 0)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self.claims is not None:  # this worker's units are done: the units no worker has started yet
            while (index := self.claims.next_free()) is not None:
                for out in self._unit(index, self.claims.units[index]):
                    yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])
        # The extractor children end with the bundle: the dedup and write steps that follow do not run beside
        # idle extractors (WCXB's pages on two workers: 0.93 GiB at peak, 0.75 without them). A runner that
        # sends another bundle starts them again, once per bundle.
        self.extract.close()
        self.progress.flush(force=True)

    def teardown(self) -> None:
        self.extract.close()
        self.progress.flush(force=True)
