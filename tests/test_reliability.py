"""No single record can stop a job, inputs are never touched, every user error is one line: adversarial inputs
(tests/adversarial.py) through the whole pipeline, and the rules behind them one by one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import adversarial
from conftest import DATA, ROOT, read_rows
from pipelines.runtime import staging
from pipelines.cli import user_error
from pipelines.config.base import ConfigError
from pipelines.config.curate import load_config, parse_config
from pipelines.config.inputs import match_files
from pipelines.runtime.runner import claim_output
from pipelines.read.charsets import decode_html
from pipelines.read.common import looks_binary
from pipelines.extract.sandbox import Interrupted, Sandbox
from pipelines.schema import new_doc

CLI = [sys.executable, "-m", "pipelines.cli"]


def run_cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def adversarial_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    counts = adversarial.build(base / "in")
    counts["warc"] += adversarial.nested_warc(base / "in" / "warc" / "nested.warc.gz")
    adversarial.symlink_traps(base / "in", base / "outside")
    config = {
        "sources": [{"name": n, "format": n, "paths": [f"in/{n}/*"]} for n in ("html", "warc", "jsonl", "parquet")]
        + [{"name": "links", "format": "html", "paths": ["in/links/**/*.html"]}],
        "output": "out",
        "filters": {"enabled": False},
        "dedup": {"enabled": False},
        "extract": {"split_bytes": 4096},  # the nested WARC.gz is read in many small ranges
    }
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    done = run_cli(["curate", "curate.yaml", "--workers", "2", "--quiet"], base)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((base / "out" / "stats.json").read_text())
    rows = {}
    for kind in ("kept", "rejected"):
        for r in read_rows(base / "out", kind):
            rows[r["source_uri"].split("/", 1)[1] + "@" + r["locator"]] = r
    return {"base": base, "counts": counts, "stats": stats, "rows": rows}


def reason(row: dict) -> str:
    return row.get("reason") or "kept"


def test_every_record_is_one_row(adversarial_run):
    stats, counts = adversarial_run["stats"], adversarial_run["counts"]
    for name in ("html", "warc", "jsonl", "parquet"):
        assert stats["sources"][name]["read"] == counts[name], name
    for s in stats["sources"].values():
        assert s["kept"] + s["rejected"] == s["read"]
    assert len(adversarial_run["rows"]) == stats["totals"]["read"]
    for row in adversarial_run["rows"].values():
        json.loads(row["metadata"], parse_constant=lambda c: pytest.fail(f"{c} in metadata"))  # strict JSON
        if row.get("reason"):
            assert row["detail"], row


def test_records_that_once_ended_the_job(adversarial_run):
    rows = adversarial_run["rows"]
    no_uri = [r for k, r in rows.items() if "A record without WARC-Target-URI" in (r["text"] or "")]
    assert len(no_uri) == 1 and no_uri[0]["url"] is None  # read, kept, and its url is null
    assert reason(rows["jsonl/bom.jsonl@offset:324"]) == "read:invalid_json"  # a 5,000-digit number
    assert "4300 digits" in rows["jsonl/bom.jsonl@offset:324"]["detail"]
    surrogate = [r for r in rows.values() if r.get("reason") == "read:invalid_unicode"]
    assert len(surrogate) == 1 and "surrogate" in surrogate[0]["detail"]
    meta = [r for r in rows.values() if (r["text"] or "").startswith("a lone surrogate in metadata")]
    assert json.loads(meta[0]["metadata"])["note"] == "\ufffd"
    nan = [r for r in rows.values() if (r["text"] or "").startswith("NaN and Infinity")]
    assert json.loads(nan[0]["metadata"]) == {"a": None, "b": None, "c": [None]}


def test_charsets_the_whatwg_way(adversarial_run):
    rows = adversarial_run["rows"]
    for name, words, charset in [
        ("python-codec.html", "Le café de la crème brûlée", "utf-8 (declared unicode_escape)"),
        ("meta-in-comment.html", "Привет, мир", "windows-1251"),
        ("utf16-bom.html", "Le café de la crème brûlée", "utf-16le"),
        ("meta-utf16-ascii.html", "Plain words only", "utf-8"),
        ("latin1-label.html", "Le café de la crème brûlée", "windows-1252"),
    ]:
        row = rows[f"html/{name}@file"]
        assert reason(row) == "kept", (name, row.get("detail"))
        assert words in row["text"], name
        assert json.loads(row["metadata"])["charset"] == charset, name
    http_wrong = [r for r in rows.values() if r["url"] == "https://a.example/http-wrong"][0]
    assert "Привет, мир" in http_wrong["text"]  # the header said utf-8, the bytes and the <meta> windows-1251
    rot13 = [r for r in rows.values() if r["url"] == "https://a.example/python-codec"][0]
    assert "crème brûlée" in rot13["text"]


def test_good_rows_are_not_lost(adversarial_run):
    rows = adversarial_run["rows"]
    parquet = {k: r for k, r in rows.items() if k.startswith("parquet/")}
    assert len(parquet) == 3000
    bad = [k for k, r in parquet.items() if r.get("reason")]
    assert bad == ["parquet/one-bad-row.parquet@row:1500"]
    assert rows[bad[0]]["reason"] == "read:invalid_utf8" and "'text'" in rows[bad[0]]["detail"]
    first = rows["jsonl/bom.jsonl@offset:0"]
    assert reason(first) == "kept" and first["text"].startswith("first line of a file")


def test_truncated_warc_record_is_corrupt_not_kept(adversarial_run):
    row = adversarial_run["rows"]["warc/truncated.warc@offset:0+"]
    assert row["reason"] == "read:corrupt_warc" and "Content-Length" in row["detail"]
    assert not any("Cut in half" in (r["text"] or "") for r in adversarial_run["rows"].values())


def test_split_ranges_find_no_phantom_records(adversarial_run):
    nested = [k for k in adversarial_run["rows"] if k.startswith("warc/nested.warc.gz@")]
    assert len(nested) == 7  # the inner WARC.gz in one record's payload yields no records of its own
    assert not any((r["url"] or "").startswith("https://inner.example/") for r in adversarial_run["rows"].values())


def test_symlinks_are_not_followed_by_default(adversarial_run):
    links = [k for k in adversarial_run["rows"] if k.startswith("links/")]
    assert links == ["links/sub/real.html@file"]


def test_symlinks_when_followed_read_each_real_file_once(tmp_path):
    adversarial.symlink_traps(tmp_path, tmp_path / "outside")
    pattern = str(tmp_path / "links" / "**" / "*.html")
    assert match_files(pattern, False) == [str(tmp_path / "links" / "sub" / "real.html")]
    followed = match_files(pattern, True)  # two loops, a link outside the tree, a link into /proc
    assert followed == [str(tmp_path / "links" / "outside.html"), str(tmp_path / "links" / "sub" / "real.html")]


# ---- charset rules, one by one ---------------------------------------------------------------------

@pytest.mark.parametrize("data, http, text, charset", [
    ("мир".encode("cp1251") + b"<meta charset=\"windows-1251\">", "utf-8", "мир", "windows-1251"),
    (b'<!-- <meta charset="koi8-r"> -->' + "é".encode(), None, "é", "utf-8"),
    (b'<meta charset="utf-16"><p>ascii', None, "<p>ascii", "utf-8"),
    ("é".encode("cp1252") + b'<meta charset="iso-8859-1">', None, "é", "windows-1252"),
    (b"\xff\xfe" + "<p>é</p>".encode("utf-16-le"), None, "<p>é</p>", "utf-16le"),
])
def test_decode_html(data, http, text, charset):
    got, used = decode_html(data, http)
    assert text in got and used == charset


def test_unknown_and_python_only_labels_are_not_charsets():
    assert decode_html(b'<meta charset="unicode_escape">\\u0041', None)[0].endswith("\\u0041")  # not decoded
    with pytest.raises(LookupError):
        decode_html(b'<meta charset="x-no-such">caf\xe9', None)


def test_utf16_with_bom_is_text_not_binary():
    assert not looks_binary(b"\xff\xfe" + "<html><body>text</body></html>".encode("utf-16-le"), 0.02)
    assert looks_binary(b"\x00\x01\x02" * 100, 0.02)


# ---- config and output folder ------------------------------------------------------------------------

SOURCE = {"name": "w", "format": "html", "paths": ["in/*.html"]}


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\nsources: []\noutput: out\n")
    start = time.monotonic()
    with pytest.raises(ConfigError, match="YAML aliases"):
        load_config(str(tmp_path / "bomb.yaml"))
    assert time.monotonic() - start < 5


def test_output_that_is_a_file_or_overlaps_inputs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.html").write_text("<p>a</p>")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        parse_config({"sources": [SOURCE], "output": "file"}, str(tmp_path))
    with pytest.raises(ConfigError, match="which refinery writes"):  # the next run would read stats.json
        parse_config({"sources": [{**SOURCE, "paths": ["in/*"]}], "output": "in"}, str(tmp_path))
    with pytest.raises(ConfigError, match="write.shard_bytes: expected a value >= 100000, got 0"):
        parse_config({"sources": [SOURCE], "output": "out", "write": {"shard_bytes": 0}}, str(tmp_path))


def test_input_folders_inside_the_output_are_refused(tmp_path):
    (tmp_path / "data" / "kept").mkdir(parents=True)
    (tmp_path / "data" / "kept" / "page.html").write_text(adversarial.page("an input in a folder named kept"))
    (tmp_path / "curate.yaml").write_text(yaml.safe_dump(
        {"sources": [{"name": "w", "format": "html", "paths": ["data/kept/*.html"]}], "output": "data"}))
    done = run_cli(["curate", "curate.yaml", "--quiet"], tmp_path, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "holds the input file" in done.stderr
    assert (tmp_path / "data" / "kept" / "page.html").exists()


def test_output_not_written_by_refinery_is_refused_and_runs_do_not_race(tmp_path):
    foreign = tmp_path / "foreign"
    (foreign / "notes").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not written by refinery"):
        with claim_output(str(foreign)):
            pass
    assert (foreign / "notes").exists()
    out = str(tmp_path / "out")
    with claim_output(out):
        with pytest.raises(ConfigError, match="being written by another refinery run .*pid"):
            with claim_output(out):
                pass
    with claim_output(out):  # released
        assert (tmp_path / "out" / ".refinery").exists()


# ---- checkpoints, interruption, extractor children ---------------------------------------------------

def test_piece_emptied_by_a_power_loss_is_redone(tmp_path):
    rows = [dict(new_doc(source="s", source_uri="f", locator=f"offset:{i}", fmt="jsonl", text=t,
                         metadata={"v": float("nan")}), row=i, text_bytes=1) for i, t in enumerate("xy")]
    path = staging.write_piece(str(tmp_path / "unit"), rows)
    assert staging.finished_ids(str(tmp_path / "unit")) == {r["id"] for r in rows}
    open(path, "wb").close()  # renamed in place, but the data never reached the disk
    assert staging.finished_ids(str(tmp_path / "unit")) == set()
    assert list((tmp_path / "unit").iterdir()) == []


def _setup(settings):
    return settings


def _die(job, state, report):
    kind, flag = job
    if kind == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
    if kind == "once" and not os.path.exists(flag):
        Path(flag).write_text("died once")
        os._exit(3)
    if kind == "always":
        os._exit(3)
    return "done"


def test_a_child_stopped_by_a_signal_is_an_interruption_not_a_verdict(tmp_path):
    box = Sandbox(_setup, _die, None, timeout_s=30)
    try:
        with pytest.raises(Interrupted):
            box(("signal", ""))
        assert box(("once", str(tmp_path / "flag"))) == ("ok", "done")  # a crash is retried once
        status, detail = box(("always", ""))
        assert status == "error" and "exit code 3" in detail
    finally:
        box.close()


def _pid(job, state, report):
    return os.getpid()


def test_prestarted_children_are_taken_or_ended(tmp_path):
    from pipelines.extract import sandbox

    sandbox.prestart(_setup, _pid, {"a": 1}, None, 2)
    first, second = sandbox._SPARES[(_setup, _pid, repr({"a": 1}), None)]
    first[0].kill()  # a spare that died before it was taken: the sandbox starts a fresh child
    first[0].join()
    boxes = [Sandbox(_setup, _pid, {"a": 1}, timeout_s=30) for _ in range(2)]
    other = Sandbox(_setup, _pid, {"a": 2}, timeout_s=30)  # other settings: never given a spare
    try:
        assert boxes[0]("pid") == ("ok", second[0].pid)
        fresh = boxes[1]("pid")
        assert fresh[0] == "ok" and fresh[1] not in (first[0].pid, second[0].pid)
        sandbox.prestart(_setup, _pid, {"a": 1}, None, 1)
        (left,) = sandbox._SPARES[(_setup, _pid, repr({"a": 1}), None)]
        assert other("pid")[1] != left[0].pid
        sandbox.discard_spares()
        assert not sandbox._SPARES and not left[0].is_alive()
    finally:
        for box in [*boxes, other]:
            box.close()


def test_sigint_then_rerun_gives_no_false_verdicts(tmp_path):
    (tmp_path / "web").mkdir()
    for copy in range(4):  # 244 pages: several seconds of extraction on any machine
        for page in sorted((DATA / "web").glob("*.html.gz")):
            (tmp_path / "web" / f"{copy}-{page.name}").write_bytes(page.read_bytes())
    (tmp_path / "curate.yaml").write_text(yaml.safe_dump({
        "sources": [{"name": "web", "format": "html", "paths": ["web/*.html.gz"]}], "output": "out",
        "filters": {"enabled": False}, "dedup": {"enabled": False}, "resume": {"every_docs": 2}}))
    proc = subprocess.Popen(CLI + ["curate", "curate.yaml", "--workers", "1", "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    progress = tmp_path / "out" / ".work"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(progress.glob("*/*/piece-*.parquet")):
        time.sleep(0.2)  # until the first piece is staged: extraction is under way
    proc.send_signal(signal.SIGINT)  # the driver alone, as a notebook interrupt does
    start = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - start < 30
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "refinery: interrupted; run the same command again to resume"
    done = run_cli(["curate", "curate.yaml", "--workers", "1", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rejected = read_rows(tmp_path / "out", "rejected")
    assert not [r for r in rejected if r["reason"] == "extract:error"], rejected
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["totals"]["read"] == 244 and stats["totals"]["kept"] + stats["totals"]["rejected"] == 244
    assert stats["resumed"] > 0  # the documents finished before the interrupt came from the checkpoints


def test_user_errors_raised_in_workers_are_one_line():
    beam = RuntimeError("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                        "classifiers.langid.LangIdUnavailable: lid.176.ftz not found at /m "
                        "[while running 'ExtractFilter/ParDo(ExtractAndFilter)']")
    assert user_error(beam) == "lid.176.ftz not found at /m"
    assert user_error(ConfigError("x: expected y")) == "x: expected y"
    assert user_error(ValueError("a bug")) is None


def test_py3langid_loads_from_any_working_folder(tmp_path, monkeypatch):
    from classifiers import langid

    (tmp_path / "data").mkdir()  # a folder named like the model's relative path
    monkeypatch.chdir(tmp_path)
    langid._py3langid.cache_clear()
    lang, prob = langid.identify("The weather was fine and the river was calm all day long.", "py3langid")
    assert lang == "en" and prob > 0.5
    assert len(langid.model_hash("py3langid")) == 16  # the manifest's hash of the model reads the same file


def test_pdf_with_a_lying_page_tree_keeps_its_readable_page():
    from pipelines.config.extract import PdfSettings
    from pipelines.extract.pdf import extract_pdf, pdf_setup

    result = extract_pdf(adversarial.looping_pdf(), pdf_setup(PdfSettings(ocr="never")), lambda m: None)
    assert result["text"] == "A readable page of the tree"
    assert result["metadata"]["unreadable_pages"] == 2 and result["metadata"]["pdf_pages"] == 3


def test_brotli_and_unknown_content_encodings():
    import brotli

    from pipelines.config.curate import Source

    from pipelines.config.extract import ExtractSettings
    from pipelines.read.warc import read_warc

    body = brotli.compress(adversarial.page("A brotli body").encode())
    records = [adversarial.warc_record("https://b.example/br", body,
                                       [("Content-Type", "text/html"), ("Content-Encoding", "br")]),
               adversarial.warc_record("https://b.example/zstd", b"\x28\xb5\x2f\xfd",
                                       [("Content-Type", "text/html"), ("Content-Encoding", "zstd")]),
               adversarial.warc_record("https://b.example/bad", b"not brotli",
                                       [("Content-Type", "text/html"), ("Content-Encoding", "br")])]
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"refinery-br-{os.getpid()}.warc.gz"
    path.write_bytes(b"".join(records))
    try:
        rows = list(read_warc(Source(name="w", format="warc", paths=("x",)), str(path), "br.warc.gz", ExtractSettings()))
    finally:
        path.unlink()
    assert "A brotli body" in rows[0]["_html"]
    assert rows[1]["reason"] == "read:content_encoding" and "zstd" in rows[1]["detail"]
    assert rows[2]["reason"] == "read:content_encoding" and "br" in rows[2]["detail"]


def test_file_names_that_are_not_utf8(tmp_path):
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    with open(os.path.join(folder, b"caf\xe9.html"), "w", encoding="utf-8") as fh:
        fh.write(adversarial.page("A page whose file name is Latin-1."))
    (tmp_path / "curate.yaml").write_text(yaml.safe_dump({
        "sources": [{"name": "w", "format": "html", "paths": ["in/*.html"]}], "output": "out",
        "filters": {"enabled": False}, "dedup": {"enabled": False}}))
    done = run_cli(["curate", "curate.yaml", "--workers", "1", "--quiet"], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    kept = read_rows(tmp_path / "out", "kept")
    assert [r["source_uri"] for r in kept] == ["in/caf\\xe9.html"]
