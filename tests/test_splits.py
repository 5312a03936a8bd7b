"""Large JSONL and WARC files are read in byte ranges by several workers: no record lost, none read twice."""
from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path

import apache_beam as beam
import apache_beam.testing.util  # noqa: F401 - assert_that
from apache_beam.transforms.window import GlobalWindow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fuzzing
from conftest import DATA, curate
from pipelines.config.curate import parse_config
from pipelines.jobs.curate import list_inputs
from pipelines.runtime.runner import make_runner, pipeline_options
from pipelines.read.readers import read_file
from pipelines.read import splits
from pipelines.read.splits import plan_units
from pipelines.runtime.staging import read_staged, unit_folder
from pipelines.runtime.units import StageUnit
from pipelines.read.warcpack import write_warc
from test_output import shard_digests


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, truth) -> Path:
    base = tmp_path_factory.mktemp("splits")
    for name in ("data", "whole", "shared"):
        (base / name).mkdir()
    (base / "data" / "wiki.jsonl").write_bytes(gzip.open(DATA / "wiki" / "wiki.jsonl.gz").read())
    pages = [(truth[n]["url"], gzip.open(DATA / "web" / f"{n}.html.gz").read()) for n in sorted(truth)[:29]]
    # a page that quotes a WARC record, gzip header bytes and all: a range starting inside it must not take the
    # quote for a record
    quoted = (b"<html><body><pre>\x1f\x8b\x08\r\n\r\nWARC/1.0\r\nWARC-Type: response\r\nContent-Length: 5\r\n\r\n"
              b"hello\r\n\r\nWARC/1.1\r\n</pre>" + b"<p>padding</p>" * 2000 + b"</body></html>")
    pages.insert(10, ("https://example.org/warc-howto", quoted))
    write_warc(pages, str(base / "data" / "crawl.warc.gz"))  # a gzip member per record
    shutil.copy(DATA / "warc" / "demo.warc.gz", base / "data" / "demo.warc.gz")  # a gzip member per record
    return base


def config(split_bytes: int) -> dict:
    return {
        "sources": [
            {"name": "wiki", "format": "jsonl", "paths": ["../data/wiki.jsonl"]},
            {"name": "crawl", "format": "warc", "paths": ["../data/crawl.warc.gz"]},
            {"name": "demo", "format": "warc", "paths": ["../data/demo.warc.gz"]},
        ],
        "output": "out",
        "filters": {"enabled": False},
        "extract": {"split_bytes": split_bytes},
        "write": {"shard_bytes": 500_000},
    }


def test_ranges_cover_every_record_once(inputs):
    cfg = parse_config(config(10**9), str(inputs / "whole"))
    sources = {s.name: s for s in cfg.sources}
    whole: dict[str, list[str]] = {}
    for name, path in list_inputs(cfg):
        whole[name] = [r["id"] for r in read_file(sources[name], path, cfg.uri(path), cfg.extract)]
    assert {k: len(v) for k, v in whole.items()} == {"wiki": 104, "crawl": 30, "demo": 15}
    for split in (4096, 5000, 33_333, 250_000):
        units = plan_units(list_inputs(cfg), {s.name: s.format for s in cfg.sources}, split)
        assert len(units) > 3
        got: dict[str, list[str]] = {}
        for u in units:
            rows = read_file(sources[u.source], u.path, cfg.uri(u.path), cfg.extract, u.start, u.end)
            got.setdefault(u.source, []).extend(r["id"] for r in rows)
        assert got == whole, split  # same records, in file order, none twice


def test_unsplittable_files_are_one_unit(tmp_path):
    """A gzip stream cannot be entered mid-way; an uncompressed WARC may quote WARC records in its payloads."""
    warc = gzip.open(DATA / "warc" / "demo.warc.gz").read()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"text": "x"}\n' * 10_000))
    (tmp_path / "b.warc.gz").write_bytes(gzip.compress(warc))
    (tmp_path / "c.warc").write_bytes(warc)
    units = plan_units([("a", str(tmp_path / "a.jsonl.gz")), ("b", str(tmp_path / "b.warc.gz")),
                        ("c", str(tmp_path / "c.warc"))], {"a": "jsonl", "b": "warc", "c": "warc"}, 4096)
    assert [u.whole for u in units] == [True, True, True]
    # a WARC gzipped as one stream is read through gzip: every record, offsets in the inflated stream
    cfg = parse_config({"sources": [{"name": "b", "format": "warc", "paths": ["b.warc.gz"]},
                                    {"name": "c", "format": "warc", "paths": ["c.warc"]}], "output": "out"},
                       str(tmp_path))
    b, c = cfg.sources
    one_stream = list(read_file(b, str(tmp_path / "b.warc.gz"), "x", cfg.extract))
    plain = list(read_file(c, str(tmp_path / "c.warc"), "x", cfg.extract))
    assert len(one_stream) == 15 and not any("reason" in r for r in one_stream)
    assert [r["locator"] for r in one_stream] == [r["locator"] for r in plain]


def test_two_workers_share_one_file(inputs, tmp_path):
    cfg = parse_config(config(16_384), str(inputs / "shared"))
    units = plan_units(list_inputs(cfg), {s.name: s.format for s in cfg.sources}, cfg.extract.split_bytes)
    work = str(tmp_path / "work")
    log = tmp_path / "log"
    log.mkdir()

    def note_worker(item: tuple, folder: str) -> None:  # which worker process staged which unit
        import os
        with open(os.path.join(folder, f"{os.getpid()}.txt"), "a") as fh:
            fh.write(f"{units[item[0]].source}\n")

    with beam.Pipeline(runner=make_runner(2, []), options=pipeline_options(2, [])) as p:
        (p | beam.Create(list(enumerate(units))) | beam.Reshuffle()
         | beam.ParDo(StageUnit(cfg, work, [u.key() for u in units], None)) | beam.Map(note_worker, str(log)))
    by_worker = {name: open(log / name).read().split() for name in os.listdir(log)}
    assert sum(1 for sources in by_worker.values() if "wiki" in sources) == 2  # both read part of wiki.jsonl
    every = [i for u in units for i in read_staged(unit_folder(work, u.key()), ["id"]).column("id").to_pylist()]
    assert len(every) == len(set(every)) == 104 + 30 + 15


def test_split_runs_give_the_same_bytes(inputs):
    whole = curate(inputs / "unsplit", config(10**9))
    split = curate(inputs / "split", config(16_384), workers=2)
    # inputs this small are cut into ranges of 1 MiB so that workers share them evenly (jobs/curate.range_bytes):
    # wiki.jsonl (2.8 MB) in three, crawl.warc.gz in two, demo.warc.gz whole
    assert whole.stats["input_units"] == 6 and split.stats["input_units"] > 20
    assert split.stats["totals"] == whole.stats["totals"]
    assert shard_digests(split.output) == shard_digests(whole.output)


def test_a_worker_done_with_its_units_stages_the_free_ones(inputs, tmp_path):
    """Work sharing between worker threads (runtime/claims.py): a worker at the end of its units stages every unit
    not yet claimed and emits their infos; the worker they were dealt to passes them by. Each unit once."""
    from pipelines.runtime.claims import Claims

    cfg = parse_config(config(16_384), str(inputs / "shared"))
    units = plan_units(list_inputs(cfg), {s.name: s.format for s in cfg.sources}, cfg.extract.split_bytes)
    assert len(units) > 4
    work, keys, claims = str(tmp_path / "work"), [u.key() for u in units], Claims(units)
    fast, slow = StageUnit(cfg, work, keys, None, claims), StageUnit(cfg, work, keys, None, claims)
    fast.setup()
    slow.setup()
    assert [i for i, _ in slow.process((1, units[1]))] == [1]  # the slow worker is on its first unit
    assert [i for i, _ in fast.process((0, units[0]))] == [0]
    out = list(fast.finish_bundle())  # the fast worker's units are done: it takes the rest
    assert all(list(v.windows) == [GlobalWindow()] for v in out)
    stolen = [v.value for v in out]
    assert sorted(i for i, _ in stolen) == list(range(2, len(units)))
    for i in range(2, len(units)):  # dealt to the slow worker, staged already: passed by
        assert list(slow.process((i, units[i]))) == []
    assert list(slow.finish_bundle()) == []
    every = [i for u in units for i in read_staged(unit_folder(work, u.key()), ["id"]).column("id").to_pylist()]
    assert len(every) == len(set(every)) == 104 + 30 + 15
    claims.forget()
    assert claims.claim(0)  # a forgotten board starts empty


def test_worker_threads_share_units_and_every_info_comes_out_once(inputs, tmp_path):
    from pipelines.runtime.claims import Claims

    cfg = parse_config(config(16_384), str(inputs / "shared"))
    units = plan_units(list_inputs(cfg), {s.name: s.format for s in cfg.sources}, cfg.extract.split_bytes)
    work, claims = str(tmp_path / "work"), Claims(units)
    with beam.Pipeline(runner=make_runner(2, [], threads=True), options=pipeline_options(2, [])) as p:
        infos = (p | beam.Create(list(enumerate(units))) | beam.Reshuffle()
                 | beam.ParDo(StageUnit(cfg, work, [u.key() for u in units], None, claims)))
        indexes = infos | beam.MapTuple(lambda index, info: index) | beam.combiners.ToList()
        beam.testing.util.assert_that(indexes | beam.Map(sorted), beam.testing.util.equal_to([list(range(len(units)))]))
    claims.forget()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), budgets=st.lists(st.integers(0, 4096), min_size=1, max_size=4))
def test_members_inflated_before_give_what_inflating_again_gives(seed, budgets):
    """A range's boundary checks look members up by (file, offset) once inflated: for any budget, the answer
    is the one inflating the member afresh under that budget gives (its `used` aside once past the budget)."""
    data = fuzzing.make("warc", seed)
    offsets = sorted({i for i in range(len(data)) if data.startswith(b"\x1f\x8b\x08", i)} | {0, len(data) // 2})
    fh = io.BytesIO(data)
    for offset in offsets:
        for budget in budgets:
            fresh = splits._inflate(fh, offset, budget)
            known = splits._inflate_member(fh, offset, budget, file=f"warc-{seed}")
            assert known[0] == fresh[0] and known[2] == fresh[2]
            assert known[1] == fresh[1] or fresh[0] == "budget"
    for offset in offsets:  # the whole file's boundaries read the same, looked up or not
        assert (splits.gzip_record_at(fh, offset, file=f"warc-{seed}")
                == splits.gzip_record_at(fh, offset) == splits.gzip_record_at(fh, offset, file=f"warc-{seed}"))


def test_option_views_are_kept_and_read_the_options_values():
    """pipeline_options keeps one view per options class: a view made again is the same object, a value set
    through one view reads the same through the options, and a deep copy (Beam copies the options it is given)
    holds its own values."""
    import copy

    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    options = pipeline_options(3, ["--runner=FnApiRunner"])
    assert options.view_as(StandardOptions) is options.view_as(StandardOptions)
    assert options.view_as(StandardOptions).runner == "FnApiRunner"
    options.view_as(StandardOptions).runner = "DirectRunner"
    assert options.get_all_options()["runner"] == "DirectRunner"
    copied = copy.deepcopy(options)
    copied.view_as(StandardOptions).runner = None
    assert options.view_as(StandardOptions).runner == "DirectRunner" and copied.get_all_options()["runner"] is None
    assert pipeline_options(3, []).view_as(DirectOptions).direct_num_workers == 3
