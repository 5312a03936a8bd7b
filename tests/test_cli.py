"""The `refinery` console script, run as a user runs it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA


def run(*args, cwd):
    exe = Path(sys.executable).parent / "refinery"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_curate_command_prints_summary_and_writes_layout(tmp_path):
    (tmp_path / "data").mkdir()
    for p in sorted((DATA / "code").glob("*.py"))[:10]:
        shutil.copy(p, tmp_path / "data" / p.name)
    (tmp_path / "data" / "empty.py").write_text("")
    (tmp_path / "c.yaml").write_text(
        "sources:\n  - {name: code, format: text, paths: ['data/*.py']}\noutput: out\nfilters: {enabled: false}\n")
    proc = run("curate", "c.yaml", "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "code" in proc.stdout and "read:empty=1" in proc.stdout
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["sources"]["code"]["read"] == 11
    assert stats["sources"]["code"]["kept"] == 10


def test_config_error_exits_2_and_names_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("sources:\n  - {name: w, format: html, paths: ['none/*.html']}\noutput: out\n")
    proc = run("curate", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "sources[w].paths[0]" in proc.stderr and "matches no file" in proc.stderr
    assert not (tmp_path / "out" / "kept").exists()


@pytest.mark.parametrize("engine, model_hash", [
    (None, "8f3472cfe8738a7b"),  # the default: the lid.176.ftz refinery ships
    ("py3langid", None),         # the documented alternative, run from a folder that is not py3langid's
])
def test_a_config_with_only_sources_and_output_runs(tmp_path, engine, model_hash):
    """What a user's first config looks like: every default (or the other language-ID engine)."""
    (tmp_path / "data").mkdir()
    shutil.copy(DATA / "wiki" / "wiki.jsonl.gz", tmp_path / "data" / "wiki.jsonl.gz")
    (tmp_path / "c.yaml").write_text("sources:\n  - {name: wiki, format: jsonl, paths: [data/wiki.jsonl.gz]}\n"
                                     "output: out\n" + (f"filters: {{language: {{engine: {engine}}}}}\n" if engine else ""))
    proc = run("curate", "c.yaml", "--workers", "1", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["totals"]["kept"] > 50 and stats["totals"]["kept"] + stats["totals"]["rejected"] == stats["totals"]["read"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["models"][f"langid:{engine or 'fasttext'}"]) == 16
    if model_hash:
        assert manifest["models"]["langid:fasttext"] == model_hash


def test_config_mistakes_are_one_line_each_and_exit_2(tmp_path):
    (tmp_path / "c.yaml").write_text("sources:\n  - {name: w, format: html, paths: ['*.html']}\noutput: out\n"
                                     "filterz: {}\ndedup: {minhash: {bands: 0}}\n")
    for args in (["curate", "c.yaml"], ["config", "check", "c.yaml"]):
        proc = run(*args, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.splitlines() == [
            "refinery: config error: dedup.minhash.bands: expected a value >= 1, got 0",
            "refinery: config error: filterz: unknown key (expected one of: base, classifiers, decontam, dedup, "
            "extract, filters, optout, output, pii, resume, sources, storage, write)"]


def test_config_schema_check_version_and_help(tmp_path):
    proc = run("config", "schema", "curate", cwd=tmp_path)
    schema = json.loads(proc.stdout)
    assert proc.returncode == 0 and schema["title"] == "refinery curate config"
    assert schema["required"] == ["sources", "output"] and schema["additionalProperties"] is False
    proc = run("config", "check", str(Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("demo.yaml: a valid curate config")
    proc = run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "refinery 0.1.0"
    proc = run("curate", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "refinery config schema curate" in proc.stdout
    assert "dedup.minhash.threshold  (default 0.8)" in proc.stdout and "one of html, warc" in proc.stdout
    proc = run("shards", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "shard_tokens  (default 50000000)" in proc.stdout


def test_a_model_file_of_the_wrong_kind_is_one_line(tmp_path):
    (tmp_path / "a.txt").write_text("Some text.")
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    (tmp_path / "c.yaml").write_text(
        "sources: [{name: t, format: text, paths: ['*.txt']}]\noutput: out\n"
        "classifiers: {models: [{name: q, path: model.bin, label: hq, threshold: 0.5}]}\n")
    proc = run("curate", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"refinery: config error: classifiers.models[0].path: {tmp_path}/model.bin is not a fastText model (.bin or .ftz)"]


@pytest.mark.parametrize("mode", ["--threads", "--processes"])
def test_a_quiet_run_writes_nothing_to_stderr(tmp_path, mode):
    """No warning from Beam about refinery's own DoFns or worker settings reaches a user whose run went well."""
    (tmp_path / "data").mkdir()
    for p in sorted((DATA / "web").glob("0*.html.gz"))[:3]:
        shutil.copy(p, tmp_path / "data" / p.name)
    (tmp_path / "c.yaml").write_text("sources:\n  - {name: web, format: html, paths: ['data/*.html.gz']}\noutput: out\n")
    proc = run("curate", "c.yaml", "--workers", "2", "--quiet", mode, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "" and "wrote " in proc.stdout
