"""Readers: one input file in, documents (or rejected rows) out, one module per format.

Every record a reader finds ends as exactly one yielded row: a document for the next stage, or a rejected
row with a `read:*` reason. A file that cannot be opened at all yields one rejected row for the file.
HTML documents carry their undecoded page under the private key `_html` until extraction.
"""
from __future__ import annotations

from typing import Iterator

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.read.html import read_html
from pipelines.read.jsonl import read_jsonl
from pipelines.read.parquet import read_parquet
from pipelines.read.pdf import read_pdf
from pipelines.read.text import read_text
from pipelines.read.warc import read_warc
from pipelines.schema import Row

READERS = {
    "html": read_html,
    "text": read_text,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "warc": read_warc,
    "pdf": read_pdf,
}


def read_file(source: Source, path: str, uri: str, settings: ExtractSettings,
              start: int = 0, end: int | None = None) -> Iterator[Row]:
    """All rows of one input file, or of the records that start in [start, end) of a split one, in file order."""
    if start == 0 and end is None:
        yield from READERS[source.format](source, path, uri, settings)
    else:
        yield from READERS[source.format](source, path, uri, settings, start, end)  # type: ignore[call-arg]
