"""Config errors name the key and what was expected."""
from __future__ import annotations

import pytest

from pipelines.config.base import ConfigError

from pipelines.config.curate import load_config, parse_config

SOURCE = {"name": "web", "format": "html", "paths": ["*.html"]}


def err(raw, tmp_path) -> str:
    with pytest.raises(ConfigError) as info:
        cfg = parse_config(raw, str(tmp_path))
        for s in cfg.sources:
            cfg.source_files(s)
    return str(info.value)


def test_valid_config_resolves_paths_against_its_folder(tmp_path):
    (tmp_path / "a.html").write_text("<html></html>")
    cfg = parse_config({"sources": [SOURCE], "output": "out",
                        "filters": {"rules": {"gopher_min_words": 3, "c4_curly_braces": False},
                                    "sources": {"web": {"gopher_min_words": 10}}}}, str(tmp_path))
    assert cfg.output == str(tmp_path / "out")
    assert cfg.source_files(cfg.sources[0]) == [str(tmp_path / "a.html")]
    assert cfg.uri(str(tmp_path / "a.html")) == "a.html"
    assert cfg.filters.thresholds("web")["gopher_min_words"] == 10
    assert cfg.filters.thresholds("other")["gopher_min_words"] == 3
    assert "c4_curly_braces" not in cfg.filters.thresholds("web")
    assert cfg.extract.html.include_comments is False


def test_a_source_can_list_its_inputs_in_a_file(tmp_path):
    """`paths_from` names a list of inputs (gzipped or not; blank and # lines skipped), relative to the list's
    folder or to `paths_base`; with `paths` too, the union; a listed file that is not there is one clear error."""
    import gzip

    crawl = tmp_path / "mirror" / "crawl-data"
    crawl.mkdir(parents=True)
    for name in ("a.warc.gz", "b.warc.gz"):
        (crawl / name).write_bytes(b"")
    (tmp_path / "lists").mkdir()
    with gzip.open(tmp_path / "lists" / "warc.paths.gz", "wt") as fh:
        fh.write("# a crawl's paths\ncrawl-data/a.warc.gz\n\ncrawl-data/b.warc.gz\n")
    (tmp_path / "extra.warc.gz").write_bytes(b"")
    source = {"name": "cc", "format": "warc", "paths_from": "lists/warc.paths.gz", "paths_base": "mirror"}
    cfg = parse_config({"sources": [source], "output": "out"}, str(tmp_path))
    assert cfg.source_files(cfg.sources[0]) == [str(crawl / "a.warc.gz"), str(crawl / "b.warc.gz")]
    cfg = parse_config({"sources": [dict(source, paths=["extra.warc.gz"])], "output": "out"}, str(tmp_path))
    assert len(cfg.source_files(cfg.sources[0])) == 3
    (tmp_path / "mirror" / "list.txt").write_text("crawl-data/a.warc.gz\ncrawl-data/c.warc.gz\n")
    message = err({"sources": [{"name": "cc", "format": "warc", "paths_from": "mirror/list.txt"}], "output": "out"},
                  tmp_path)
    assert message.startswith("sources[cc].paths_from: 1 of the 2 files") and "c.warc.gz" in message
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    assert "lists no file" in err({"sources": [{"name": "cc", "format": "warc", "paths_from": "empty.txt"}],
                                   "output": "out"}, tmp_path)


def test_config_hash_ignores_location_but_not_settings(tmp_path):
    a = parse_config({"sources": [SOURCE], "output": "out"}, str(tmp_path / "x"))
    b = parse_config({"sources": [SOURCE], "output": "out"}, str(tmp_path / "y"))
    c = parse_config({"sources": [SOURCE], "output": "out", "filters": {"rules": {"gopher_min_words": 9}}}, str(tmp_path))
    assert a.hash == b.hash != c.hash


@pytest.mark.parametrize("raw, expected", [
    ({"output": "out"}, "sources: required key is missing"),
    ({"sources": [SOURCE]}, "output: required key is missing"),
    ({"sources": [SOURCE], "output": "out", "filterz": {}}, "filterz: unknown key (expected one of: base, classifiers, decontam"),
    ({"sources": [SOURCE], "output": "out", "filters": {"min_wrds": 3}}, "filters.min_wrds: unknown key"),
    ({"sources": [SOURCE], "output": "out", "filters": {"rules": {"gopher_min_wrds": 3}}}, "filters.rules.gopher_min_wrds: unknown key"),
    ({"sources": [SOURCE], "output": "out", "filters": {"rules": {"gopher_min_words": "many"}}}, "filters.rules.gopher_min_words: expected bool or float, got 'many'"),
    ({"sources": [SOURCE], "output": "out", "filters": {"language": {"engine": "cld3"}}}, "filters.language.engine: expected one of fasttext, py3langid, got 'cld3'"),
    ({"sources": [SOURCE], "output": "out", "classifiers": {"models": [{"name": "q", "path": "nope.bin", "label": "pos", "threshold": 0.5}]}}, "classifiers.models[0].path: model file not found"),
    ({"sources": [SOURCE], "output": "out", "decontam": {"enabled": True, "paths": ["nope.jsonl"]}}, "decontam.paths[0]: file not found"),
    ({"sources": [SOURCE], "output": "out", "dedup": {"enabled": "yes"}}, "dedup.enabled: expected bool"),
    ({"sources": [SOURCE], "output": "out", "extract": {"html": {"fast": 1}}}, "extract.html.fast: expected bool"),
    ({"sources": [SOURCE], "output": "out", "extract": {"timeout_s": 0}}, "extract.timeout_s: expected a value > 0, got 0"),
    ({"sources": [SOURCE], "output": "out", "extract": {"html": {"route_model": "mine.json"}}}, "extract.html.route_model: router model not found: mine.json (train one with"),
    ({"sources": [dict(SOURCE, format="docx")], "output": "out"}, "sources[0].format: expected one of html, warc"),
    ({"sources": [{"name": "web", "format": "html"}], "output": "out"}, "sources[0]: give the source's inputs: `paths`"),
    ({"sources": [{"name": "web", "format": "html", "paths_from": "nope.txt"}], "output": "out"}, "sources[web].paths_from: cannot read"),
    ({"sources": [dict(SOURCE, paths_base="crawl")], "output": "out"}, "sources[0]: `paths_base` says where the paths of `paths_from` are"),
    ({"sources": [SOURCE, SOURCE], "output": "out"}, "sources[1].name: 'web' is used twice"),
    ({"sources": [], "output": "out"}, "sources: expected at least 1 item(s), got []"),
    ({"sources": [SOURCE], "output": "out", "write": {"compression": "lz5"}}, "write.compression: expected one of zstd, snappy, gzip, none, got 'lz5'"),
    ({"sources": [SOURCE], "output": "out", "extract": {"pdf": {"ocr": "sometimes"}}}, "extract.pdf.ocr: expected one of auto, always, never"),
    ({"sources": [SOURCE], "output": "out", "extract": {"pdf": {"ocr_engine": "abbyy"}}}, "extract.pdf.ocr_engine: expected one of tesseract"),
    ({"sources": [SOURCE], "output": "out", "extract": {"pdf": {"dpi": 20}}}, "extract.pdf.dpi: expected a value >= 50, got 20"),
    ({"sources": [SOURCE], "output": "out", "extract": {"pdf": {"ocr_languages": "eng"}}}, None),
    ({"sources": [dict(SOURCE, paths=["nothing/*.html"])], "output": "out"}, "sources[web].paths[0]: 'nothing/*.html' matches no file"),
])
def test_errors_name_the_key(raw, expected, tmp_path):
    if expected is None:  # a single string where a list is expected is taken as a one-item list
        (tmp_path / "a.html").write_text("<html></html>")
        assert parse_config(raw, str(tmp_path)).extract.pdf.ocr_languages == ("eng",)
        return
    assert expected in err(raw, tmp_path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_every_problem_is_listed_at_once(tmp_path):
    raw = {"sources": [{"name": "web", "format": "htm", "paths": ["*.html"], "colour": 1}], "output": "out",
           "dedup": {"minhash": {"bands": 0, "threshold": 2}}, "write": {"compression": "lz5"}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, str(tmp_path))
    assert info.value.problems == [
        "sources[0].format: expected one of html, warc, jsonl, parquet, text, pdf, got 'htm'",
        "sources[0].colour: unknown key (expected one of: attribution, consent, follow_symlinks, format, license, "
        "name, paths, paths_base, paths_from, text_field, url_field)",
        "dedup.minhash.bands: expected a value >= 1, got 0",
        "dedup.minhash.threshold: expected a value <= 1, got 2",
        "write.compression: expected one of zstd, snappy, gzip, none, got 'lz5'",
    ]


def test_a_file_that_is_not_a_fasttext_model_is_refused(tmp_path):
    (tmp_path / "a.html").write_text("<p>a</p>")
    (tmp_path / "q.bin").write_text("not a model")
    raw = {"sources": [SOURCE], "output": "out",
           "classifiers": {"models": [{"name": "q", "path": "q.bin", "label": "hq", "threshold": 0.5}]}}
    with pytest.raises(ConfigError, match=r"classifiers.models\[0\].path: .*q.bin is not a fastText model"):
        parse_config(raw, str(tmp_path))


@pytest.mark.parametrize("body", ['{"names": []}', "[1, 2]", "not JSON", b"\xff\xfe"])
def test_a_file_that_is_not_a_router_model_is_refused(tmp_path, body):
    (tmp_path / "a.html").write_text("<p>a</p>")
    path = tmp_path / "mine.json"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    raw = {"sources": [SOURCE], "output": "out", "extract": {"html": {"route_model": "mine.json"}}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, str(tmp_path))
    assert info.value.problems == ["extract.html.route_model: mine.json: not a page router model "
                                   "(python -m classifiers.page_route train writes one)"]


def test_numbers_in_exponent_form_and_aliases_in_yaml(tmp_path):
    (tmp_path / "a.html").write_text("<p>a</p>")
    path = tmp_path / "c.yaml"
    path.write_text("sources: [{name: web, format: html, paths: ['*.html']}]\noutput: out\n"
                    "extract: {max_decompressed_bytes: 3000000000, timeout_s: 1e1}\n")
    assert load_config(str(path)).extract.timeout_s == 10.0


@pytest.mark.parametrize("job", ["curate", "classifier", "swarm", "shards", "run"])
def test_committed_schemas_are_current(job):
    """`python -m pipelines.config.jobs` rewrites them after a config model changes."""
    from pipelines.config.jobs import schema_file, schema_text

    with open(schema_file(job), encoding="utf-8") as fh:
        assert fh.read() == schema_text(job)


def test_example_configs_name_their_schema_and_are_valid():
    import re
    from pathlib import Path

    from pipelines.config.jobs import guess_job, model_of
    from pipelines.config.base import load_yaml

    examples = Path(__file__).resolve().parent.parent / "examples"
    for path in sorted(examples.glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\.\./pipelines/config/schemas/(\w+)\.schema\.json)",
                             first)
        assert match, f"{path.name}: {first}"
        assert (examples / match.group(1)).is_file()
        raw, _ = load_yaml(str(path))
        job = guess_job(raw)
        assert model_of(job) is model_of(match.group(2)), path.name
        assert model_of(job).model_json_schema()["properties"].keys() >= set(raw), path.name
