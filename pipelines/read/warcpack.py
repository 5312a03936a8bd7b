"""Pack HTML pages into a WARC file of response records (for demos, tests and users who hold loose pages)."""
from __future__ import annotations

import io
from typing import Iterable

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def write_warc(pages: Iterable[tuple[str, bytes]], path: str, date: str = "2026-11-01T00:00:00Z") -> int:
    """Write (url, html bytes) pairs as gzipped WARC response records; returns the record count.

    The date is fixed and record ids derive from the URL, so the same pages give the same file.
    """
    import hashlib
    import uuid

    n = 0
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=path.endswith(".gz"))
        for url, body in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            rid = uuid.UUID(hashlib.md5(url.encode()).hexdigest())
            record = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict={"WARC-Date": date, "WARC-Record-ID": f"<urn:uuid:{rid}>"},
            )
            writer.write_record(record)
            n += 1
    return n
