"""Opt-out: blocked domains and URL patterns, checked right after reading, before any extraction work."""
from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import urlsplit

from pipelines.config.curate import OptoutSettings
from pipelines.runtime import storage
from pipelines.schema import reject


def _lines(path: str) -> list[str]:
    with storage.open(path, "r", encoding="utf-8") as fh:
        return [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]


class Optout:
    stage, name = "optout", "optout"

    def __init__(self, settings: OptoutSettings) -> None:
        self.enabled = settings.enabled
        self.domains = {d.lower().lstrip(".") for p in settings.domains for d in _lines(p)}
        self.patterns = [u for p in settings.urls for u in _lines(p)]

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        url = doc.get("url")
        if not self.enabled or not url:
            return doc
        host = (urlsplit(url).hostname or "").lower()
        parts = host.split(".")
        for i in range(len(parts) - 1):
            if ".".join(parts[i:]) in self.domains:
                return _drop(reject(doc, "optout:domain", f"host={host} blocked as {'.'.join(parts[i:])}"))
        for pattern in self.patterns:
            if fnmatch.fnmatchcase(url, pattern):
                return _drop(reject(doc, "optout:url", f"url matches {pattern!r}"))
        return doc


def _drop(row: dict[str, Any]) -> dict[str, Any]:
    """No extraction input travels on with an opted-out row."""
    row.pop("_html", None)
    row.pop("_pdf", None)
    return row
