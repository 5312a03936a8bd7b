"""PDF files: the file's bytes, for the PDF extractor (one document per file)."""
from __future__ import annotations

from typing import Iterator

from pipelines.config.curate import Source

from pipelines.config.extract import ExtractSettings
from pipelines.runtime import storage
from pipelines.read.common import GZIP_ERRORS, TooLarge, read_limited
from pipelines.schema import Row, new_doc, reject

def read_pdf(source: Source, path: str, uri: str, settings: ExtractSettings) -> Iterator[Row]:
    """The PDF's bytes, for the PDF extractor (one document per file)."""
    doc = new_doc(source=source.name, source_uri=uri, locator="file", fmt="pdf")
    limit = settings.pdf.max_bytes
    try:
        size = storage.getsize(path)
        if size > limit:
            yield reject(doc, "extract:too_large", f"{size} bytes > extract.pdf.max_bytes={limit}")
            return
        data = read_limited(path, limit)
    except TooLarge as exc:
        yield reject(doc, "extract:too_large", f"decompressed {exc} (extract.pdf.max_bytes)")
        return
    except GZIP_ERRORS as exc:
        yield reject(doc, "read:corrupt_gzip", f"{type(exc).__name__}: {exc}")
        return
    except OSError as exc:
        yield reject(doc, "read:io_error", f"{type(exc).__name__}: {exc}")
        return
    if not data.strip():
        yield reject(doc, "read:empty", f"{len(data)} bytes")
        return
    doc["_pdf"] = data
    doc["metadata"]["bytes"] = len(data)
    yield doc
