"""Parquet: one record per row, read in batches; the locator is the row number."""
from __future__ import annotations

from typing import Any, Iterator

import pyarrow.parquet as pq

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.runtime import storage
from pipelines.read.common import brief, first_bad_byte, record_to_doc
from pipelines.schema import Row, is_rejected, new_doc, reject

def read_parquet(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    def new(locator: str) -> Row:
        return new_doc(source=source.name, source_uri=uri, locator=locator, fmt="parquet")

    try:
        opened = storage.arrow_input(path)
        fh = opened.__enter__()
    except OSError as exc:
        yield reject(new("file"), "read:io_error", f"{type(exc).__name__}: {exc}")
        return
    try:
        yield from _read(fh, source, settings, new)
    finally:
        opened.__exit__(None, None, None)


def _read(fh: Any, source: Source, settings: ExtractSettings, new: Any) -> Iterator[Row]:
    try:
        pf = pq.ParquetFile(fh)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others for a bad file
        yield reject(new("file"), "read:corrupt_parquet", f"{type(exc).__name__}: {exc}")
        return
    if source.text_field not in pf.schema_arrow.names:
        yield reject(new("file"), "read:no_text_column",
                     f"no column {source.text_field!r} (columns: {', '.join(pf.schema_arrow.names)})")
        return
    row_no = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for record in _records(batch):
                locator = f"row:{row_no}"
                row_no += 1
                if isinstance(record, str):
                    yield reject(new(locator), "read:invalid_utf8", record)
                    continue
                doc = record_to_doc(new(locator), record, source)
                if doc is None:
                    yield reject(new(locator), "read:no_text", f"{source.text_field!r} is null or not a string")
                elif is_rejected(doc):  # invalid text: that row's rejection
                    yield doc
                elif len(doc["text"]) > settings.max_doc_bytes:
                    yield reject(doc | {"text": None}, "extract:too_large", f"{len(doc['text'])} chars > extract.max_doc_bytes")
                else:
                    yield doc
    except Exception as exc:  # noqa: BLE001  (pyarrow raises ArrowInvalid, OSError and others for a bad file)
        yield reject(new(f"row:{row_no}+"), "read:corrupt_parquet", f"{brief(exc)}; rest of file lost")


def _records(batch: Any) -> list[dict | str]:
    """The batch's rows as dicts; a row whose string column holds invalid UTF-8 (Parquet writers do not all
    check) is a str saying which column and byte, and the other rows of its batch are read as usual."""
    import pyarrow as pa

    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        pass
    strings = [i for i, f in enumerate(batch.schema) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    columns = [col.cast(pa.binary() if pa.types.is_string(col.type) else pa.large_binary()) if i in strings else col
               for i, col in enumerate(batch.columns)]
    raw = pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pylist()
    names = [batch.schema.names[i] for i in strings]
    out: list[dict | str] = []
    for record in raw:
        try:
            for name in names:
                if record[name] is not None:
                    record[name] = record[name].decode("utf-8")
            out.append(record)
        except UnicodeDecodeError as exc:
            out.append(f"column {name!r}: {first_bad_byte(exc)}")
    return out
