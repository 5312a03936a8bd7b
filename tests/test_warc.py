"""The WARC path gives the same texts as the HTML path for the same pages."""
from __future__ import annotations

import json

from conftest import WEB, curate, page_bytes, read_rows
from pipelines.read.warcpack import write_warc


def test_warc_texts_equal_html_texts(tmp_path, truth):
    names = sorted(truth)[:20]
    warc = tmp_path / "pages.warc.gz"
    assert write_warc([(truth[n]["url"], page_bytes(n)) for n in names], str(warc)) == 20
    html_dir = tmp_path / "html"
    html_dir.mkdir()
    for n in names:
        (html_dir / f"{n}.html.gz").write_bytes((WEB / f"{n}.html.gz").read_bytes())
    result = curate(tmp_path, {
        "sources": [
            {"name": "html", "format": "html", "paths": ["html/*.html.gz"]},
            {"name": "warc", "format": "warc", "paths": ["pages.warc.gz"]},
        ],
        "output": "out",
        "filters": {"enabled": False},
        "dedup": {"enabled": False},
    })
    kept = read_rows(result.output, "kept")
    from_warc = {r["url"]: r for r in kept if r["source"] == "warc"}
    from_html = {truth[r["source_uri"].split("/")[-1][:-8]]["url"]: r for r in kept if r["source"] == "html"}
    assert len(from_warc) == len(from_html) == 20
    for url, row in from_warc.items():
        assert row["text"] == from_html[url]["text"], url
        assert row["format"] == "warc"
        assert row["locator"].startswith("offset:")
        meta = json.loads(row["metadata"])
        assert meta["warc_record_id"].startswith("<urn:uuid:")
    # ids differ (different files and locators) but are stable hashes
    assert not set(r["id"] for r in from_warc.values()) & set(r["id"] for r in from_html.values())


def test_warc_skips_non_documents_and_rejects_non_html(tmp_path, truth):
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    name = sorted(truth)[0]
    path = tmp_path / "mixed.warc.gz"
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        w.write_record(w.create_warcinfo_record("mixed.warc.gz", {"software": "test"}))
        for url, status, ctype, body in [
            ("https://a.example/page", "200 OK", "text/html; charset=utf-8", page_bytes(name)),
            ("https://a.example/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(100)),
            ("https://a.example/missing", "404 Not Found", "text/html", b"<html>gone</html>"),
        ]:
            http = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    result = curate(tmp_path, {
        "sources": [{"name": "crawl", "format": "warc", "paths": ["*.warc.gz"]}],
        "output": "out",
    })
    s = result.stats["sources"]["crawl"]
    assert s["read"] == 3  # the warcinfo record is not a document
    assert s["kept"] == 1
    assert s["rejected_by_reason"] == {"read:unsupported_content_type": 1, "read:http_status": 1}


def test_repeated_payloads_are_extracted_once_with_the_same_rows(tmp_path, truth):
    names = sorted(truth)[:5]
    records = []
    for n in names:  # each page, then the same page crawled again, then under another URL
        url = truth[n]["url"]
        other = url + ("&" if "?" in url else "?") + "ref=feed"
        records += [(url, page_bytes(n)), (url, page_bytes(n)), (other, page_bytes(n))]
    write_warc(records, str(tmp_path / "crawl.warc.gz"))

    def run(name: str, memory: int, metadata: bool) -> tuple[list[tuple], int]:
        result = curate(tmp_path, {
            "sources": [{"name": "crawl", "format": "warc", "paths": ["crawl.warc.gz"]}],
            "output": name,
            "extract": {"repeat_memory": memory, "html": {"metadata": metadata}},
            "filters": {"enabled": False},
            "dedup": {"enabled": False},
        })
        rows = sorted((r["locator"], r["url"], r["text"], r["metadata"]) for r in read_rows(result.output, "kept"))
        assert len(rows) == 15
        return rows, result.stats["repeated_pages"]

    for metadata, repeats in ((True, 5), (False, 10)):  # the host name comes from the URL: with metadata, same URL
        fresh, none = run(f"fresh-{metadata}", 0, metadata)
        remembered, counted = run(f"remembered-{metadata}", 64, metadata)
        assert none == 0 and counted == repeats
        assert remembered == fresh  # the same text and metadata, row by row


def test_remembered_pages_are_bounded_by_count_and_text(truth, monkeypatch):
    from pipelines.config.extract import ExtractSettings
    from pipelines.extract import extract

    pages = [(page_bytes(n).decode("utf-8", "replace"), truth[n]["url"]) for n in sorted(truth)[:3]]
    extractor = extract.HtmlExtractor(ExtractSettings(repeat_memory=2))
    try:
        for html, url in pages:
            status, body = extractor(html, url)
            assert status == "ok" and body["text"]
        assert len(extractor.recent) == 2  # the oldest page forgotten
        extractor(*pages[0])
        assert extractor.repeats == 0
        extractor(*pages[0])
        assert extractor.repeats == 1
        monkeypatch.setattr(extract, "MEMORY_CHARS", 1)  # past the text bound only the newest page stays
        extractor(*pages[1])
        assert len(extractor.recent) == 1 and extractor.held == len(extractor(*pages[1])[1]["text"])
    finally:
        extractor.close()


def test_a_gzip_member_with_several_records_gives_one_row_per_record(tmp_path, truth):
    """Some writers put several WARC records in one gzip member. Each record is still one row (located
    `offset:<member>#<k>` after the member's first), read whole or in byte ranges, and no row is added."""
    import gzip
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from pipelines.config.curate import parse_config
    from pipelines.read.readers import read_file
    from pipelines.read.splits import plan_units

    def record(url: str, body: bytes, kind: str = "response") -> bytes:
        out = io.BytesIO()
        w = WARCWriter(out, gzip=False)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        if kind == "request":
            w.write_record(w.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
        else:
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
        return out.getvalue()

    names = sorted(truth)[:12]
    groups = [[0], [1, 2], [3], [4, 5, 6], [7], [8, 9], [10], [11]]  # pages per gzip member
    path = tmp_path / "grouped.warc.gz"
    with open(path, "wb") as fh:
        for g, group in enumerate(groups):
            parts = [record(truth[names[i]]["url"], page_bytes(names[i])) for i in group]
            if g == 3:
                parts.insert(1, record("https://a.example/request", b"", "request"))  # not a document
            fh.write(gzip.compress(b"".join(parts)))
    cfg = parse_config({"sources": [{"name": "w", "format": "warc", "paths": [str(path)]}], "output": "out"},
                       str(tmp_path))
    whole = list(read_file(cfg.sources[0], str(path), "grouped.warc.gz", cfg.extract))
    assert [r.get("reason") for r in whole] == [None] * 12
    assert [r["url"] for r in whole] == [truth[n]["url"] for n in names]
    assert sum(1 for r in whole if "#" in r["locator"]) == 4  # 2, 5 (after the request), 6, 9
    assert len({r["locator"] for r in whole}) == 12
    for split in (4096, 60_000):
        units = plan_units([("w", str(path))], {"w": "warc"}, split)
        assert len(units) > 1
        ranged = [r for u in units for r in read_file(cfg.sources[0], u.path, "grouped.warc.gz", cfg.extract,
                                                      u.start, u.end)]
        assert [(r["locator"], r["url"]) for r in ranged] == [(r["locator"], r["url"]) for r in whole], split
    result = curate(tmp_path, {"sources": [{"name": "w", "format": "warc", "paths": ["grouped.warc.gz"]}],
                               "output": "out", "filters": {"enabled": False}, "dedup": {"enabled": False}})
    assert result.stats["totals"]["read"] == 12 and result.stats["totals"]["rejected"] == 0
