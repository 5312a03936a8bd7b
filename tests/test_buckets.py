"""Inputs and outputs in a bucket: a real S3 API server on localhost (moto's server mode), started here.

The same project is curated from local disk and from the bucket (one config, its `base` moved): the rows are
byte for byte the same. Then the bucket misbehaves (errors under load, a crash while publishing, a second run on
the same output) and the output stays whole.
"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.config.base import ConfigError
from pipelines.config.curate import parse_config
from pipelines.jobs.curate import run_curate
from pipelines.runtime import storage
from conftest import DATA
from s3 import FaultyProxy, S3Server


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    before = server.use()
    yield server
    for key, value in before.items():
        if value is None:
            storage.os.environ.pop(key, None)
        else:
            storage.os.environ[key] = value
    storage._filesystem_cache.clear()
    server.stop()


def project(folder: Path) -> dict:
    """A small project of every kind of input, its crawl listed in a paths file as Common Crawl lists its WARCs."""
    data = folder / "data"
    (data / "web").mkdir(parents=True)
    for page in sorted((DATA / "web").glob("0*.html.gz"))[:12]:
        shutil.copy(page, data / "web")
    shutil.copytree(DATA / "warc", data / "crawl")
    (data / "books").mkdir()
    for name in ("shakespeare__sonnets.txt", "milton__areopagitica.txt"):
        shutil.copy(DATA / "books" / name, data / "books")
    shutil.copytree(DATA / "wiki", data / "wiki")
    (data / "pdf").mkdir()
    for name in ("cardinal.pdf", "invalid.pdf", "libreoffice-writer-password.pdf"):
        shutil.copy(DATA / "pdf" / name, data / "pdf")
    (folder / "lists").mkdir()
    with gzip.open(folder / "lists" / "crawl.paths.gz", "wt") as fh:
        fh.write("data/crawl/demo.warc.gz\n")
    return {
        "sources": [
            {"name": "web", "format": "html", "paths": ["data/web/*.html.gz"]},
            {"name": "crawl", "format": "warc", "paths_from": "lists/crawl.paths.gz", "paths_base": "."},
            {"name": "books", "format": "text", "paths": ["data/books/*.txt"]},
            {"name": "wiki", "format": "jsonl", "paths": ["data/wiki/*.jsonl.gz"]},
            {"name": "pdf", "format": "pdf", "paths": ["data/pdf/*.pdf"]},
        ],
        "output": "out",
        "extract": {"pdf": {"ocr": "never"}},
        "write": {"shard_bytes": 400_000, "row_group_rows": 50},
    }


def run(folder: Path, config: dict, workers: int = 1, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "curate.yaml").write_text(yaml.safe_dump(config))
    return run_curate(parse_config(config, str(folder)), workers=workers, show_progress=False, **kw)


def shards(result) -> dict[str, str]:
    return {f"{kind}/{s['path']}": s["sha256"] for kind in ("kept", "rejected") for s in result.manifest[kind]}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    config = project(folder)
    return folder, config, run(folder, config)


@pytest.fixture(scope="module")
def bucket(s3, local):
    folder, config, _ = local
    url = s3.bucket("corpus") + "/project"
    for name in ("data", "lists"):
        s3.upload(folder / name, f"{url}/{name}")
    return url


def published(s3, output: str) -> list[str]:
    prefix = output[len("s3://"):].split("/", 1)[1] + "/"
    return [k[len(prefix):] for k in s3.keys(output)]


def test_errors_under_load_and_a_crash_while_publishing(s3, local, bucket, tmp_path, monkeypatch):
    """One request in 15 answered 500 InternalError or 503 SlowDown/ServiceUnavailable (retried), then the run
    dies while publishing and the same command finishes it: the bytes of a clean local run."""
    _, config, first = local
    config = {**config, "base": bucket, "output": "crashed"}
    output = f"{bucket}/crashed"
    copied = []
    real_copy = storage.copy

    def copy_then_die(src: str, dst: str) -> None:
        if len(copied) == 2:
            raise SystemExit("killed while publishing")
        real_copy(src, dst)
        copied.append(dst)

    proxy = FaultyProxy(s3.endpoint, every=15)  # each fault costs a backoff of about half a second
    s3.use(proxy.endpoint)
    monkeypatch.setattr(storage, "copy", copy_then_die)
    try:
        with pytest.raises(SystemExit):
            run(tmp_path, config)
    finally:
        s3.use()
        proxy.stop()
    assert proxy.faults >= 10
    names = published(s3, output)
    assert "_SUCCESS" not in names and "manifest.json" not in names
    assert len([n for n in names if n.startswith("kept/")]) == 2  # two shards were out when it died
    monkeypatch.setattr(storage, "copy", real_copy)
    result = run(tmp_path, config)
    assert result.stats["elapsed_s"] == json.loads(s3.read(f"{output}/stats.json"))["elapsed_s"]  # not run again
    assert shards(result) == shards(first)
    names = published(s3, output)
    assert sorted(n for n in names if n.startswith(("kept/", "rejected/"))) == sorted(shards(first))
    assert "_SUCCESS" in names and not [n for n in names if n.startswith((".staging", ".work", ".refinery.lock"))]
    for name, digest in shards(result).items():  # what the manifest says is what the bucket holds
        assert storage.sha256(f"{output}/{name}") == digest


def test_two_runs_on_one_output_are_refused(s3, tmp_path):
    from pipelines.runtime import runner

    output = s3.bucket("locks") + "/out"
    with runner.claim_output(output):
        with pytest.raises(ConfigError, match="being written by another refinery run"):
            with runner.claim_output(output):
                pass
    assert storage.listdir(output) == [".refinery"]  # released
    # a lock left by a run that died (not renewed for the lease) is taken over
    storage.write_bytes(f"{output}/{runner.LOCK}", json.dumps({"holder": "dead", "renewed": 0}).encode())
    with runner.claim_output(output):
        assert json.loads(storage.read_bytes(f"{output}/{runner.LOCK}"))["holder"] != "dead"
    s3.client().put_object(Bucket="locks", Key="theirs/data.csv", Body=b"a,b\n")
    with pytest.raises(ConfigError, match="not written by refinery"):
        with runner.claim_output("s3://locks/theirs"):
            pass


def test_ranged_reads(s3, tmp_path):
    """A byte range of a large object is read with ranged GETs from the range's start: nothing before it is
    fetched (the reads ahead are storage.BLOCK bytes long, more than this object's second half)."""
    from pipelines.read.jsonl import read_jsonl

    lines = [json.dumps({"text": f"document {i} " + "word " * 200}) for i in range(4000)]
    body = ("\n".join(lines) + "\n").encode()
    (tmp_path / "big.jsonl").write_bytes(body)
    url = s3.bucket("ranges") + "/big.jsonl"
    s3.upload(tmp_path, "s3://ranges")
    source = parse_config({"sources": [{"name": "s", "format": "jsonl", "paths": [str(tmp_path / "big.jsonl")]}],
                           "output": str(tmp_path / "out")}, str(tmp_path)).sources[0]
    settings = parse_config({"sources": [source.model_dump()], "output": "o"}, str(tmp_path)).extract
    start, end = len(body) // 2, len(body) // 2 + 100_000
    local_rows = list(read_jsonl(source, str(tmp_path / "big.jsonl"), "u", settings, start, end))
    proxy = FaultyProxy(s3.endpoint, every=10**9)
    s3.use(proxy.endpoint)
    try:
        remote_rows = list(read_jsonl(source, url, "u", settings, start, end))
    finally:
        s3.use()
        proxy.stop()
    assert [r["id"] for r in remote_rows] == [r["id"] for r in local_rows] and len(local_rows) > 50
    assert 100_000 < proxy.bytes_out <= len(body) - start + 4096  # the head of the object never travelled


def test_user_mistakes_are_one_line(s3, tmp_path):
    from pipelines.cli import main

    config = {"sources": [{"name": "s", "format": "jsonl", "paths": ["s3://no-such-bucket/x/*.jsonl"]}],
              "output": str(tmp_path / "out")}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"sources\[s\]\.paths\[0\]: the bucket does not exist"):
        run_curate(parse_config(config, str(tmp_path)), show_progress=False)
    assert main(["curate", str(tmp_path / "a.yaml")]) == 2
    with pytest.raises(ConfigError, match="credentials never go in a config"):
        parse_config({**config, "storage": {"s3": {"secret_access_key": "x"}}}, str(tmp_path))
    missing_output = {"sources": [{"name": "s", "format": "jsonl", "paths": [str(tmp_path / "a.yaml")]}],
                      "output": "s3://no-such-bucket/out"}
    with pytest.raises(ConfigError, match=r"^output: s3://no-such-bucket/out: the bucket does not exist$"):
        run_curate(parse_config(missing_output, str(tmp_path)), show_progress=False)
    with pytest.raises(ConfigError, match=r"pip install 'refinery\[azure\]'"):
        storage.filesystem("az://container/x")
    with pytest.raises(ConfigError, match="read-only"):
        storage.write_bytes("https://example.org/x", b"")


def test_a_cluster_that_shares_no_disk(s3, local, bucket, tmp_path, tmp_path_factory):
    """Beam's portable runner with an EXTERNAL worker pool in its own mount namespace: the driver's folders (the
    config, pytest's temporary folders, /tmp unless the checkout lies there) are empty tmpfs to the workers, so
    a local path handed from driver to worker fails the run. Inputs and output are in the bucket."""
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from s3 import free_port
    from test_output import wait_for_port

    _, config, first = local
    (tmp_path / "curate.yaml").write_text("driver's file")
    hidden = [str(tmp_path_factory.getbasetemp())]
    if not str(ROOT).startswith("/tmp/"):
        hidden.append("/tmp")
    mounts = " && ".join(f"mount -t tmpfs tmpfs {h}" for h in hidden)
    job_port, pool_port = free_port(), free_port()
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    pool = (f"{mounts} && test ! -e {tmp_path}/curate.yaml && exec {sys.executable} -m "
            f"apache_beam.runners.worker.worker_pool_main --service_port {pool_port}")
    services = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(job_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", pool], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
    ]
    try:
        wait_for_port(job_port, services[0])
        wait_for_port(pool_port, services[1])
        cfg = parse_config({**config, "base": bucket}, str(tmp_path))
        result = run_curate(cfg, beam_args=[
            "--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}"], show_progress=False)
    finally:
        for proc in services:
            proc.kill()
            proc.wait()
    assert shards(result) == shards(first)  # the same bytes: ids, source URIs, every column
    assert result.stats["totals"] == first.stats["totals"] and result.stats["totals"]["read"] > 40
    names = published(s3, result.output)
    assert "_SUCCESS" in names and "manifest.json" in names and "data_card.md" in names
    assert not [n for n in names if n.startswith((".staging", ".work", ".refinery.lock"))]
    manifest = json.loads(s3.read(f"{result.output}/manifest.json"))
    assert manifest["config_hash"] == first.manifest["config_hash"]  # where a project lies is not its identity


def whole_run(folder: Path, base: str | None) -> None:
    """`refinery run`: curate, mix and shards of a three-domain project; with `base`, all of it in a bucket."""
    from pipelines.cli import main

    where = {"base": base} if base else {}
    configs = {
        "curate.yaml": {**where, "output": "curated", "filters": {"enabled": False},
                        "dedup": {"minhash": {"enabled": False}}, "sources": [
                            {"name": "books", "format": "text", "paths": ["data/books/*.txt"]},
                            {"name": "code", "format": "text", "paths": ["data/code/*.py"]},
                            {"name": "wiki", "format": "jsonl", "paths": ["data/wiki/*.jsonl.gz"]}]},
        "mix.yaml": {**where, "pool": "curated", "output": "mix", "domain_column": "source",
                     "domains": ["books", "code", "wiki"], "heldout_fraction": 0.1, "tokenizer": {"kind": "bytes"},
                     "proxy": {"n_layer": 1, "n_head": 2, "d_model": 16, "context": 32},
                     "train": {"steps": 20, "batch": 8, "lr": 0.003, "warmup": 2, "group_size": 4, "threads": 1},
                     "eval": {"max_bytes": 4000, "sets": [{"name": "code", "domain": "code"},
                                                          {"name": "tasks", "tasks": "eval/tasks.jsonl"}]},
                     "mix": {"budget_tokens": 2.0e5, "max_epochs": 4, "swarm_size": 4, "noise_mixtures": 0,
                             "confirm_runs": 1, "search_samples": 200}},
        "shards.yaml": {**where, "pool": "curated", "mix": "mix/mix.yaml", "output": "shards",
                        "tokenizer": {"kind": "bytes"}, "shard_tokens": 50_000,
                        "formats": ["parquet", "tokens", "megatron"]},
        "run.yaml": {"curate": "curate.yaml", "mix": "mix.yaml", "shards": "shards.yaml"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in configs.items():
        (folder / name).write_text(yaml.safe_dump(body))
    assert main(["run", str(folder / "run.yaml"), "--workers", "1", "--quiet"]) == 0


def run_project(folder: Path) -> None:
    (folder / "data" / "code").mkdir(parents=True)
    (folder / "data" / "books").mkdir()
    for name in ("shakespeare__sonnets.txt", "milton__areopagitica.txt", "shakespeare__macbeth.txt"):
        shutil.copy(DATA / "books" / name, folder / "data" / "books")
    for path in sorted((DATA / "code").glob("*.py"))[:25]:
        shutil.copy(path, folder / "data" / "code")
    shutil.copytree(DATA / "wiki", folder / "data" / "wiki")
    (folder / "eval").mkdir()
    shutil.copy(DATA.parent / "eval" / "tasks.jsonl", folder / "eval")


def test_refinery_run_in_a_bucket_writes_what_it_writes_on_disk(s3, tmp_path):
    local_dir = tmp_path / "local"
    run_project(local_dir)
    whole_run(local_dir, None)
    url = s3.bucket("whole-run") + "/p"
    for name in ("data", "eval"):
        s3.upload(local_dir / name, f"{url}/{name}")
    whole_run(tmp_path / "configs", url)

    def digests(manifest: dict) -> dict:
        return {f"{folder}/{f['path']}": f["sha256"] for folder, files in manifest["files"].items() for f in files}

    local_shards = json.loads((local_dir / "shards" / "manifest.json").read_text())
    bucket_shards = json.loads(s3.read(f"{url}/shards/manifest.json"))
    assert digests(bucket_shards) == digests(local_shards) and len(digests(local_shards)) >= 6
    for name in digests(local_shards):  # the trainer's files, byte for byte
        assert s3.read(f"{url}/shards/{name}") == (local_dir / "shards" / name).read_bytes()
    assert yaml.safe_load(s3.read(f"{url}/mix/mix.yaml")) == yaml.safe_load((local_dir / "mix" / "mix.yaml").read_text())
    curated = json.loads(s3.read(f"{url}/curated/manifest.json"))
    assert curated["kept"] == json.loads((local_dir / "curated" / "manifest.json").read_text())["kept"]
    names = published(s3, f"{url}/shards")
    assert "_SUCCESS" in names and not [n for n in names if n.startswith((".staging", ".work"))]


def test_a_router_model_in_a_bucket(s3, tmp_path):
    """`extract.html.route_model` may name a file in a bucket: the config checks it there, and each worker's
    extractor reads a local copy of it, named in the `extractor` column with the hash of its bytes."""
    import hashlib

    from pipelines.extract.extract import HtmlExtractor
    from pipelines.extract.route import MODEL

    (tmp_path / "models").mkdir()
    shutil.copy(MODEL, tmp_path / "models" / "mine.json")
    s3.upload(tmp_path / "models", s3.bucket("routers") + "/models")
    (tmp_path / "a.html").write_text("<html><body><main><h1>A kettle</h1><p>It boils water.</p></main></body></html>")
    raw = {"sources": [{"name": "web", "format": "html", "paths": ["a.html"]}], "output": "out",
           "extract": {"html": {"route_model": "s3://routers/models/mine.json"}}}
    settings = parse_config(raw, str(tmp_path)).extract
    assert settings.html.route_model == "s3://routers/models/mine.json"
    extractor = HtmlExtractor(settings)
    try:
        digest = hashlib.sha256(Path(MODEL).read_bytes()).hexdigest()[:12]
        assert extractor.version.endswith(f"+ router 12 (mine.json {digest})")
        status, out = extractor((tmp_path / "a.html").read_text(), None)
        assert status == "ok" and "It boils water." in out["text"]
    finally:
        extractor.close()
    with pytest.raises(ConfigError, match=r"extract.html.route_model: router model not found: s3://routers/none"):
        parse_config({**raw, "extract": {"html": {"route_model": "s3://routers/none.json"}}}, str(tmp_path))
