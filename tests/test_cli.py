"""The `refinery` console script, run as a user runs it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

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
