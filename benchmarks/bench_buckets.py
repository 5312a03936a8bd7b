"""Curate with inputs and output in a bucket against the same run on local disk, side by side.

Builds the curate benchmark's input (bench_scale.py: JSONL files of real text with planted copies), uploads it
to an S3 API server on localhost (moto's server mode, in its own process, so its memory is not counted), and
runs `refinery curate` on both in subprocesses, alternating A B B A. Reported: wall time, peak RSS of curate and
its children, and the ratios bucket / disk. The server shares this machine's cores with the run (a real store
would not) and answers from memory (a real store is further away): the wall-time ratio says what the storage
layer costs in requests and copies, not what a network adds.

    python benchmarks/bench_buckets.py --docs 20000 --repeat 2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pool import measured  # noqa: E402
from bench_scale import ROOT, build  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    raise SystemExit("the S3 server did not start")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(base: Path, project: str, workers: int, server: int | None) -> dict:
    """curate of the project at `project` (a folder or a bucket URL: the same relative paths, so the same
    ids); with the CPU time the S3 server spent meanwhile."""
    config = {"base": project, "sources": [{"name": "web", "format": "jsonl", "paths": ["data/*.jsonl"]}],
              "output": "out"}
    base.mkdir(exist_ok=True)
    (base / "curate.yaml").write_text(yaml.safe_dump(config))
    before = cpu_seconds(server) if server else 0.0
    out = measured(ROOT, ["curate", str(base / "curate.yaml"), "--workers", str(workers), "--quiet"])
    return {**out, "server_cpu": cpu_seconds(server) - before if server else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="runs per side, alternating; the fastest is reported")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-buckets-"))
    server = None
    try:
        import boto3

        planted = build(folder / "data", args.docs)
        print(f"{os.cpu_count()} cores, {args.workers} workers; {args.docs:,} documents, "
              f"{planted['text_bytes'] / 1e6:.1f} MB of text", flush=True)
        sides = {"disk": str(folder), "bucket": "s3://bench"}
        runs: dict[str, list[dict]] = {"disk": [], "bucket": []}
        for r in range(args.repeat):
            for name in (["disk", "bucket"] if r % 2 == 0 else ["bucket", "disk"]):
                if name == "disk":
                    shutil.rmtree(folder / "out", ignore_errors=True)
                else:  # a fresh server each time: moto keeps what a run deleted, and slows as it grows
                    if server is not None:
                        server.kill()
                    server, endpoint = start_server()
                    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)  # the standard variables
                    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                                          aws_secret_access_key="bench", region_name="us-east-1")
                    client.create_bucket(Bucket="bench")
                    for path in sorted((folder / "data").glob("*.jsonl")):
                        client.upload_file(str(path), "bench", f"data/{path.name}")
                runs[name].append(run(folder / "config", sides[name], args.workers,
                                      server.pid if name == "bucket" else None))
                print(f"  run {r + 1} {name:<7} {runs[name][-1]['wall']:6.1f} s  "
                      f"{runs[name][-1]['peak'] / 2**30:5.2f} GiB", flush=True)
        disk = min(runs["disk"], key=lambda x: x["wall"])
        bucket = min(runs["bucket"], key=lambda x: x["wall"])
        manifest_disk = json.loads((folder / "out" / "manifest.json").read_text())
        manifest_bucket = json.loads(client.get_object(Bucket="bench", Key="out/manifest.json")["Body"].read())
        totals_disk = json.loads((folder / "out" / "stats.json").read_text())["totals"]
        totals_bucket = json.loads(client.get_object(Bucket="bench", Key="out/stats.json")["Body"].read())["totals"]
        for name, r in (("disk", disk), ("bucket", bucket)):
            print(f"{name:<7} wall {r['wall']:7.1f} s  {args.docs / r['wall']:6.0f} docs/s  peak RSS "
                  f"{r['peak'] / 2**30:5.2f} GiB  (S3 server CPU meanwhile {r['server_cpu']:5.1f} s)", flush=True)
        print(f"bucket / disk: wall {bucket['wall'] / disk['wall']:.3f}x, peak RSS {bucket['peak'] / disk['peak']:.3f}x; "
              f"same counts: {totals_disk == totals_bucket} (kept {totals_bucket['kept']:,}, rejected "
              f"{totals_bucket['rejected']:,}); same shard bytes: "
              f"{[s['sha256'] for s in manifest_disk['kept']] == [s['sha256'] for s in manifest_bucket['kept']]}",
              flush=True)
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
