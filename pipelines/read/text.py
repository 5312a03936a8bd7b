"""Plain text files: one document per file, UTF-8 (a byte-order mark allowed)."""
from __future__ import annotations

from typing import Iterator

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.read.common import first_bad_byte, whole_file
from pipelines.schema import Row, reject

def read_text(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    doc, data = whole_file(source, path, uri, settings)
    if data is None:
        yield doc
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield reject(doc, "read:invalid_utf8", first_bad_byte(exc))
        return
    doc["text"] = text
    doc["extractor"] = "text"
    doc["metadata"]["bytes"] = len(data)
    yield doc
