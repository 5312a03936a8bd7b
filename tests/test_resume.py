"""Crash and resume: a curate run killed with SIGKILL part-way, then run again, gives the bytes of a clean run."""
from __future__ import annotations

import contextlib
import glob
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import DATA, ROOT, curate
from test_output import shard_digests


def crash_config(**overrides) -> dict:
    config = {
        "sources": [
            {"name": "web", "format": "html", "paths": ["../data/web/*.html.gz"]},
            {"name": "pdfs", "format": "pdf", "paths": ["../data/pdf/c02-22.pdf",  # scanned: OCR
                                                         "../data/pdf/002-trivial-libre-office-writer.pdf",
                                                         "../data/pdf/pdflatex-4-pages.pdf"]},
            {"name": "wiki", "format": "jsonl", "paths": ["../data/wiki.jsonl"]},
        ],
        "output": "out",
        "filters": {"rules": {"gopher_min_words": 20}},
        "resume": {"every_docs": 2},
        "write": {"shard_bytes": 300_000},
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("resume")
    shutil.copytree(DATA / "web", base / "data" / "web")
    shutil.copytree(DATA / "pdf", base / "data" / "pdf")
    (base / "data" / "wiki.jsonl").write_bytes(gzip.open(DATA / "wiki" / "wiki.jsonl.gz").read())
    return base


@pytest.fixture(scope="module")
def clean(data) -> dict[str, str]:
    result = curate(data / "clean", crash_config())
    assert not os.path.exists(Path(result.output) / ".work")  # checkpoints go once the output is published
    return shard_digests(result.output)


def checkpointed_ids(output: Path) -> set[str]:
    """Ids of the rows staged so far (pieces that are being renamed into place are not there yet)."""
    ids: set[str] = set()
    for path in glob.glob(str(output / ".work" / "*" / "*" / "piece-*.parquet")):
        with contextlib.suppress(OSError, pa.ArrowInvalid):
            ids.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return ids


def staged_units(output: Path) -> set[str]:
    """Keys of the units staged whole."""
    return {Path(p).parent.name for p in glob.glob(str(output / ".work" / "*" / "*" / "done.json"))}


def kill_part_way(base: Path, config: dict, min_done: int = 6, min_units: int = 0) -> set[str]:
    """Start `refinery curate` in its own process group; SIGKILL the group once `min_done` documents are
    checkpointed (and `min_units` units staged whole). Returns the checkpointed ids."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "curate", str(base / "curate.yaml"),
                             "--workers", "1", "--quiet"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    output = base / "out"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and (
            len(checkpointed_ids(output)) < min_done or len(staged_units(output)) < min_units):
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = checkpointed_ids(output)
    assert len(done) >= min_done
    assert not [p for p in glob.glob(str(output / "*" / "*")) if p.endswith(".tmp")]
    return done


def test_sigkill_then_rerun_gives_the_clean_bytes(data, clean):
    base = data / "crash"
    # an earlier, different run left a complete output here: the crash must leave it untouched
    previous = curate(base, crash_config(filters={"enabled": False}))
    before = shard_digests(previous.output)
    done = kill_part_way(base, crash_config())
    # nothing of the killed run is visible: kept/ and rejected/ are still the earlier run's complete sets
    assert shard_digests(previous.output) == before

    resumed = curate(base, crash_config())
    total = resumed.stats["totals"]["read"]
    # the documents checkpointed before the kill were taken from the checkpoint, not extracted again
    print(f"killed with {len(done)} of {total} records checkpointed; the rerun took them from the checkpoint")
    assert resumed.stats["resumed"] == len(done) < total
    assert shard_digests(resumed.output) == clean
    assert not os.path.exists(base / "out" / ".work") and not os.path.exists(base / "out" / ".staging")


def test_a_rerun_reads_only_the_units_not_staged_yet(data, clean):
    """Killed after some units were staged whole: the rerun takes their rows from their pieces and never opens
    their input files. Here those files (a copy, at the same paths relative to the config, so the ids are the
    clean run's) are overwritten with zeros of the same size and modification time (the unit's key is
    unchanged): reading any of them again would change the output."""
    from pipelines.config.curate import parse_config
    from pipelines.jobs.curate import list_inputs, range_bytes
    from pipelines.read.splits import plan_units

    shutil.copytree(data / "data", data / "units-root" / "data")
    config = crash_config()
    base = data / "units-root" / "units"
    kill_part_way(base, config, min_units=8)
    cfg = parse_config(config, str(base))
    files = list_inputs(cfg)
    units = plan_units(files, {s.name: s.format for s in cfg.sources}, range_bytes(files, cfg.extract.split_bytes))
    done = staged_units(base / "out")
    assert 8 <= len(done) < len(units)
    for unit in units:
        if unit.key() in done:
            assert unit.whole  # a range of a file would share the file with ranges still to read
            st = os.stat(unit.path)
            Path(unit.path).write_bytes(bytes(st.st_size))
            os.utime(unit.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    resumed = curate(base, config)
    assert resumed.stats["units_resumed"] == len(done)
    assert shard_digests(resumed.output) == clean


def test_sigkill_inside_one_unsplittable_file(data, truth):
    """One single-stream WARC.gz: one unit, staged in pieces; the rerun skips the records its pieces hold."""
    from pipelines.read.warcpack import write_warc

    plain = data / "one.warc"
    write_warc([(truth[n]["url"], gzip.open(DATA / "web" / f"{n}.html.gz").read()) for n in sorted(truth)], str(plain))
    (data / "data" / "one.warc.gz").write_bytes(gzip.compress(plain.read_bytes()))
    config = crash_config(sources=[{"name": "crawl", "format": "warc", "paths": ["../data/one.warc.gz"]}])
    clean_run = curate(data / "one-clean", config)
    assert clean_run.stats["input_units"] == 1
    done = kill_part_way(data / "one-crash", config)
    resumed = curate(data / "one-crash", config)
    assert resumed.stats["resumed"] == len(done) < resumed.stats["totals"]["read"]
    assert shard_digests(resumed.output) == shard_digests(clean_run.output)


def test_a_crash_while_publishing_is_finished_by_the_next_run(data, clean, monkeypatch):
    import pipelines.jobs.curate as curate_module
    from pipelines.write.output import publish

    base = data / "publish"

    def publish_kept_then_die(staging: str, output: str, names: dict) -> None:
        publish(staging, output, ("kept",), names)
        raise KeyboardInterrupt("killed between kept/ and rejected/")

    monkeypatch.setattr(curate_module, "publish", publish_kept_then_die)
    with pytest.raises(KeyboardInterrupt):
        curate(base, crash_config())
    ready = json.loads((base / "out" / ".staging" / "ready.json").read_text())
    assert os.path.exists(base / "out" / "kept") and not os.path.exists(base / "out" / "rejected")
    monkeypatch.undo()

    finished = curate(base, crash_config())
    assert shard_digests(finished.output) == clean
    # the second run published what the first one staged, without running the pipeline again
    assert finished.stats == ready["stats"]
    assert json.loads((base / "out" / "stats.json").read_text())["elapsed_s"] == ready["stats"]["elapsed_s"]
    assert not os.path.exists(base / "out" / ".staging")


def test_changed_config_starts_over(data, clean):
    base = data / "changed"
    output = base / "out"
    curate(base, crash_config())
    # checkpoints of a config are never used by another one
    work = output / ".work" / "stale" / "unit"
    work.mkdir(parents=True)
    (work / "done.json").write_text('{"rows": 0}')
    again = curate(base, crash_config())
    assert again.stats["resumed"] == 0
    assert shard_digests(again.output) == clean


# ---- damaged staged pieces: the unit is staged again ------------------------------------------------

def _done_pieces(output: Path) -> list[Path]:
    """Pieces of units staged whole, in a fixed order."""
    return sorted(Path(p) for p in glob.glob(str(output / ".work" / "*" / "*" / "piece-*.parquet"))
                  if (Path(p).parent / "done.json").exists())


@pytest.fixture(scope="module")
def killed(data) -> Path:
    """A run killed after three units were staged whole (each test damages a copy of its output)."""
    base = data / "killed"
    kill_part_way(base, crash_config(), min_units=3)
    return base


def foreign_piece(piece: Path, tmp: Path) -> bytes:
    """The same rows staged by another run (another run key) for the same unit, as that run writes them."""
    from pipelines.runtime import staging

    from pipelines.schema import scores_of

    rows = pq.read_table(piece).to_pylist()
    for row in rows:  # in memory, scores and rule values are dicts (the file holds them as entries)
        row["scores"], row["rule_values"] = scores_of(row["scores"]) or None, scores_of(row["rule_values"]) or None
    folder = tmp / "another-run" / piece.parent.name
    return Path(staging.write_piece(str(folder), rows)).read_bytes()


@pytest.mark.parametrize("damage", ["empty", "truncated", "another run"])
def test_a_damaged_piece_is_staged_again(data, clean, killed, damage, tmp_path):
    """Killed after some units were staged whole; one piece of such a unit is damaged the way a power loss, a
    full disk or a careless copy leaves it; the same command run again stages that unit again, says so, and
    publishes the clean run's bytes."""
    base = data / f"damaged-{damage.replace(' ', '-')}"
    shutil.copytree(killed, base)
    piece = _done_pieces(base / "out")[1]
    body = piece.read_bytes()
    if damage == "empty":
        piece.write_bytes(b"")
    elif damage == "truncated":
        piece.write_bytes(body[: len(body) // 2])
    else:
        foreign = foreign_piece(piece, tmp_path)
        assert foreign != body
        piece.write_bytes(foreign)
    rerun = subprocess.run([sys.executable, "-m", "pipelines.cli", "curate", str(base / "curate.yaml"),
                            "--workers", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    assert "1 staged unit(s) had damaged pieces and were staged again" in rerun.stderr
    stats = json.loads((base / "out" / "stats.json").read_text())
    assert stats["units_restaged"] == 1
    [note] = stats["restaged_units"]
    assert note["unit"] == piece.parent.name and note["problems"][0].startswith(piece.name + ": ")
    expected = {"empty": "cannot be read", "truncated": "cannot be read", "another run": "written by another run"}
    assert expected[damage] in note["problems"][0]
    assert stats["units_resumed"] >= 2  # the sound units were taken as they were
    assert shard_digests(base / "out") == clean


def test_a_done_unit_missing_a_piece_or_holding_an_extra_one(tmp_path):
    """done.json lists the pieces and their rows: a piece removed, one added, or one of another length is found."""
    from pipelines.runtime import staging
    from pipelines.schema import new_doc

    folder = str(tmp_path / "run" / "unit")
    rows = [dict(new_doc(source="s", source_uri="f", locator=f"offset:{i}", fmt="jsonl", text=t), row=i,
                 text_bytes=1) for i, t in enumerate("abcd")]
    first = staging.write_piece(folder, rows[:2])
    second = staging.write_piece(folder, rows[2:])
    staging.mark_done(folder, 4)
    assert staging.damage(folder) == []
    facts = staging.read_staged(folder, ["id", "text_bytes"])  # the decisions' columns, from the facts alone
    assert facts.column("row").to_pylist() == [0, 1, 2, 3] and facts.column("id").to_pylist() == [r["id"] for r in rows]
    body = open(second, "rb").read()
    os.remove(second)
    assert staging.damage(folder) == ["piece-0000000002.parquet: missing"]
    staging.write_piece(folder, rows[2:3])  # the same name, one row fewer
    assert staging.damage(folder) == ["piece-0000000002.parquet: holds 1 rows, done.json records 2"]
    open(second, "wb").write(body)
    extra = staging.write_piece(folder, [dict(rows[0], row=9)])
    assert staging.damage(folder) == ["piece-0000000009.parquet: not listed in done.json"]
    facts = os.path.join(folder, staging.FACTS)
    kept = open(facts, "rb").read()
    open(facts, "wb").write(kept[: len(kept) // 2])
    assert staging.damage(folder)[-1].startswith("facts.parquet: cannot be read")
    open(facts, "wb").write(kept)
    staging.discard(folder, staging.damage(folder))
    assert not staging.is_done(folder) and not os.path.exists(extra) and os.path.exists(first)
    assert staging.finished_ids(folder) == {r["id"] for r in rows}


def test_a_damaged_unit_whose_input_is_gone_is_one_line(tmp_path):
    """Its pieces cannot be used and its input cannot be read again: one clear line naming the unit and what to
    delete, through the CLI's handling of user errors (exit 2, no traceback)."""
    from pipelines.cli import user_error
    from pipelines.config.curate import parse_config
    from pipelines.jobs.curate import list_inputs
    from pipelines.read.splits import plan_units
    from pipelines.runtime.staging import CheckpointError, unit_folder
    from pipelines.runtime.units import StageUnit

    (tmp_path / "wiki.jsonl").write_bytes(gzip.open(DATA / "wiki" / "wiki.jsonl.gz").read())
    cfg = parse_config(crash_config(sources=[{"name": "wiki", "format": "jsonl", "paths": ["wiki.jsonl"]}]),
                       str(tmp_path))
    [unit] = plan_units(list_inputs(cfg), {"wiki": "jsonl"}, 1 << 30)
    keys, work = [unit.key()], str(tmp_path / "work")
    stage = StageUnit(cfg, work, keys, None)
    stage.setup()
    [(_, info)] = list(stage.process((0, unit)))
    assert info.rows > 0
    pieces = sorted(Path(unit_folder(work, keys[0])).glob("piece-*.parquet"))
    pieces[0].write_bytes(b"")
    os.remove(unit.path)
    with pytest.raises(CheckpointError) as caught:
        list(stage.process((0, unit)))
    line = user_error(RuntimeError(f"CheckpointError: {caught.value} [while running 'Stage']"))
    assert line is not None and "\n" not in line
    assert keys[0] in line and "is gone or changed" in line and f"delete {work}" in line
    assert f"{pieces[0].name}: cannot be read" in line
    stage.teardown()
