"""HTML files: one page per file, decoded for the extractor (under the private key `_html`)."""
from __future__ import annotations

from typing import Iterator

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.read.charsets import with_html
from pipelines.read.common import whole_file
from pipelines.schema import Row

def read_html(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    doc, data = whole_file(source, path, uri, settings)
    if data is None:
        yield doc
        return
    yield with_html(doc, data)
