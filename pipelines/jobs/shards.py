"""The shards job: the chosen mixture materialised from the curated pool for a trainer, as a Beam pipeline.

Per domain, documents are taken in a seeded random order until the domain's share of the token budget is met.
A domain with fewer tokens than its share is taken whole and then repeated **by value** (the highest-scored
documents first), never beyond `max_epochs` passes; each row records its `repeat` index. Documents the proxies
held out for evaluation never enter. Rows are shuffled by a seeded hash and written as Parquet shards, token
files (a flat array of token ids, each document followed by the end-of-text token, and an index of document
starts), and provenance (shard, position, document id, repeat, source file and locator).
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import shutil
import sys
import time
from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from proxies.data import is_heldout
from proxies.tokenizer import BpeTokenizer, ByteTokenizer, Tokenizer

from pipelines.config.shards import Profile, ShardsConfig, ShardsTokenizer
from pipelines.runtime.runner import make_runner, pipeline_options
from pipelines.write.datacard import shards_card
from pipelines.runtime.files import atomic_path, sha256_file, write_json
from pipelines.write.output import publish
from pipelines.schema import Row, SCORES, score_entries, scores_of

FOLDERS = ("parquet", "tokens", "provenance")
SHARD_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False), pa.field("repeat", pa.int32(), nullable=False),
    pa.field("text", pa.string()), pa.field("source", pa.string()), pa.field("domain", pa.string()),
    pa.field("scores", SCORES), pa.field("n_tokens", pa.int64(), nullable=False),
    pa.field("license", pa.string()), pa.field("consent", pa.string()),
])
PROVENANCE_SCHEMA = pa.schema([
    pa.field("shard", pa.string()), pa.field("position", pa.int64()), pa.field("id", pa.string()),
    pa.field("repeat", pa.int32()), pa.field("source_uri", pa.string()), pa.field("locator", pa.string()),
])


def load_tokenizer(spec: ShardsTokenizer) -> Tokenizer:
    if spec.kind == "bytes":
        return ByteTokenizer()
    with open(spec.path) as fh:
        return BpeTokenizer.from_json(fh.read())


def _hash(seed: int, *parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{':'.join(map(str, parts))}".encode(), digest_size=8).digest(),
                          "little")


def value_of(scores: dict | None, score: str | None) -> float:
    scores = scores or {}
    if score:
        return float(scores.get(score, 0.0))
    return max((v for k, v in scores.items() if k.startswith("quality")), default=0.0)


def _fill(candidates: list[tuple[str, int, float]], got: int, target: float, tol: float
          ) -> tuple[list[str], int]:
    """Take candidates in order while they fit under target + tol; then, if still short by more than tol,
    the one remaining candidate that lands closest to the target. Returns the ids taken and the new total."""
    taken, rest = [], []
    for doc_id, n, _ in candidates:
        if got >= target - tol:
            rest.append((doc_id, n))
        elif got + n <= target + tol:
            taken.append(doc_id)
            got += n
        else:
            rest.append((doc_id, n))
    if got < target - tol and rest:
        doc_id, n = min(rest, key=lambda c: abs(got + c[1] - target))
        if abs(got + n - target) < abs(got - target):
            taken.append(doc_id)
            rest.remove((doc_id, n))
            got += n
    return _swap_closer(taken, rest, {doc_id: n for doc_id, n, _ in candidates}, got, target, tol)


def _swap_closer(taken: list[str], rest: list[tuple[str, int]], size: dict[str, int], got: int, target: float,
                 tol: float, limit: int = 2000) -> tuple[list[str], int]:
    """When whole documents leave the total off by more than tol (large documents), move one document in, out,
    or swap a pair, while that brings the total closer. Bounded: the first `limit` of each side."""
    for _ in range(len(taken) + len(rest) + 1):
        if abs(got - target) <= tol:
            break
        best: tuple | None = None
        outs = [(i, size[t]) for i, t in enumerate(taken[:limit])] + [(None, 0)]
        ins = [(j, n) for j, (_, n) in enumerate(rest[:limit])] + [(None, 0)]
        for i, n_out in outs:
            for j, n_in in ins:
                new = got - n_out + n_in
                if (i is not None or j is not None) and abs(new - target) < abs(got - target) and \
                        (best is None or abs(new - target) < best[0]):
                    best = (abs(new - target), i, j, new)
        if best is None:
            break
        _, i, j, got = best
        out_id = taken.pop(i) if i is not None else None
        if j is not None:
            taken.append(rest.pop(j)[0])
        if out_id is not None:
            rest.append((out_id, size[out_id]))
    return taken, got


def plan_domain(items: list[tuple[str, int, float]], target: float, max_epochs: float, seed: int,
                tol: float = 0.0) -> tuple[list[tuple[str, int]], dict]:
    """(id, repeat) pairs for one domain, and its report. items: (id, tokens, value); tol: tokens of slack.

    Enough tokens: documents in a seeded random order until the target. Too few: every document once, then
    further passes over the documents by value, best first, up to max_epochs passes in all.
    """
    available = sum(n for _, n, _ in items)
    shuffled = sorted(items, key=lambda it: _hash(seed, it[0]))
    if available >= target:
        ids, got = _fill(shuffled, 0, target, tol)
        picks = [(doc_id, 0) for doc_id in ids]
    else:
        picks = [(doc_id, 0) for doc_id, _, _ in shuffled]
        got = available
        by_value = sorted(items, key=lambda it: (-it[2], _hash(seed, it[0])))
        for r in range(1, int(math.floor(max_epochs))):
            if got >= target - tol:
                break
            ids, got = _fill(by_value, got, target, tol)
            picks += [(doc_id, r) for doc_id in ids]
    repeats: dict[int, int] = {}
    for _, r in picks:
        repeats[r] = repeats.get(r, 0) + 1
    report = {"requested_tokens": int(round(target)), "available_tokens": int(available), "achieved_tokens": int(got),
              "documents": len(items), "rows": len(picks), "rows_by_repeat": {str(k): v for k, v in sorted(repeats.items())},
              "epochs": round(got / available, 4) if available else 0.0,
              "capped": bool(got < target - max(tol, 0.01 * target))}
    return picks, report


def profile_reason(row: Row, profile: Profile) -> str | None:
    """Why a licence/consent profile excludes a document, or None."""
    lic, consent = row.get("license") or "unknown", row.get("consent") or "unknown"
    if profile.allow_licenses is not None and lic not in profile.allow_licenses:
        return "profile_license"
    if lic in (profile.deny_licenses or ()):
        return "profile_license"
    if profile.allow_consent is not None and consent not in profile.allow_consent:
        return "profile_consent"
    return None


def _read_pool(path: str, cfg: ShardsConfig) -> Iterator[Any]:
    cols = ["id", "text", "source", "source_uri", "locator", "scores", "license", "consent", cfg.domain_column]
    have = pq.ParquetFile(path).schema_arrow.names
    table = pq.read_table(path, columns=[c for c in dict.fromkeys(cols) if c in have])
    for row in table.to_pylist():
        domain = row[cfg.domain_column]
        row["domain"] = domain
        row["scores"] = scores_of(row["scores"])
        why = None
        if cfg.weights.get(domain, 0.0) <= 0:
            why = "not_in_mix"
        elif cfg.exclude_heldout_fraction > 0 and is_heldout(row["id"], cfg.exclude_heldout_fraction):
            why = "eval_heldout"
        else:
            why = profile_reason(row, cfg.profile)
        if why:
            yield beam.pvalue.TaggedOutput("excluded", (domain or "(none)", row["source"], why))
        else:
            yield row


class _Tokenize(beam.DoFn):
    def __init__(self, spec: ShardsTokenizer) -> None:
        self.spec = spec

    def setup(self) -> None:
        self.tok = load_tokenizer(self.spec)

    def process(self, row: Row) -> Iterator[Row]:
        ids = self.tok.encode(row["text"])
        row["tokens"] = np.append(ids, self.tok.eot)
        row["n_tokens"] = len(row["tokens"])
        yield row


def write_shard_files(folder: str, index: int, count: int, rows: list[Row], vocab_size: int) -> dict:
    """Parquet, token file and index, and provenance of one shard (rows already in shard order)."""
    name = f"shard-{index:05d}-of-{count:05d}"
    dtype = np.uint16 if vocab_size <= 65536 else np.uint32
    tokens = np.concatenate([r["tokens"] for r in rows]).astype(dtype) if rows else np.zeros(0, dtype)
    starts = np.cumsum([0] + [r["n_tokens"] for r in rows]).astype(np.int64)
    table = pa.Table.from_pylist([{
        "id": r["id"], "repeat": r["repeat"], "text": r["text"], "source": r["source"], "domain": r["domain"],
        "scores": score_entries(r["scores"]), "n_tokens": r["n_tokens"], "license": r.get("license"),
        "consent": r.get("consent")} for r in rows], schema=SHARD_SCHEMA)
    prov = pa.Table.from_pylist([{
        "shard": name, "position": i, "id": r["id"], "repeat": r["repeat"], "source_uri": r["source_uri"],
        "locator": r["locator"]} for i, r in enumerate(rows)], schema=PROVENANCE_SCHEMA)
    outputs = [
        (os.path.join(folder, "parquet", name + ".parquet"), lambda p: pq.write_table(table, p, compression="zstd")),
        (os.path.join(folder, "tokens", name + ".bin"), lambda p: tokens.tofile(p)),
        (os.path.join(folder, "tokens", name + ".idx"), lambda p: starts.tofile(p)),
        (os.path.join(folder, "provenance", name + ".parquet"), lambda p: pq.write_table(prov, p, compression="zstd")),
    ]
    for path, write in outputs:
        with atomic_path(path) as tmp:
            write(tmp)
    return {"name": name, "rows": len(rows), "tokens": int(len(tokens))}


def build_pipeline(p: beam.Pipeline, cfg: ShardsConfig, staging: str, vocab_size: int) -> None:
    paths = sorted(glob.glob(os.path.join(cfg.pool, "kept", "*.parquet")))
    read = (p | "Shards" >> beam.Create(paths) | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(_read_pool, cfg).with_outputs("excluded", main="docs"))
    (read.excluded | "CountExcluded" >> beam.combiners.Count.PerElement()
     | "ExcludedDict" >> beam.combiners.ToList()
     | "WriteExcluded" >> beam.Map(lambda items: write_json(
         os.path.join(staging, "excluded.json"), [[d, src, why, n] for (d, src, why), n in sorted(items)])))
    docs = read.docs | "Tokenize" >> beam.ParDo(_Tokenize(cfg.tokenizer))

    def plan(domain: str, items: Iterable[tuple[str, int, float]]) -> Iterator[Any]:
        picks, report = plan_domain(sorted(items), cfg.weights[domain] * cfg.budget_tokens, cfg.max_epochs, cfg.seed,
                                    tol=0.004 * cfg.budget_tokens)
        yield beam.pvalue.TaggedOutput("report", (domain, report))
        by_id: dict[str, list[int]] = {}
        for doc_id, r in picks:
            by_id.setdefault(doc_id, []).append(r)
        yield from by_id.items()

    planned = (docs
               | "Slim" >> beam.Map(lambda d: (d["domain"], (d["id"], d["n_tokens"], value_of(d["scores"], cfg.score))))
               | "ByDomain" >> beam.GroupByKey()
               | "Plan" >> beam.FlatMapTuple(plan).with_outputs("report", main="picks"))
    (planned.report | "Reports" >> beam.combiners.ToDict()
     | "WriteReports" >> beam.Map(lambda r: write_json(os.path.join(staging, "domains.json"), r)))

    def expand(item: tuple[str, dict[str, list]]) -> Iterator[Row]:
        _, g = item
        for doc in g["doc"]:
            for repeats in g["picks"]:
                for r in repeats:
                    row = dict(doc)
                    row["repeat"] = r
                    yield row

    rows = ({"doc": docs | "ById" >> beam.Map(lambda d: (d["id"], d)), "picks": planned.picks}
            | "Join" >> beam.CoGroupByKey() | "Rows" >> beam.FlatMap(expand))
    count = (rows | "Tokens" >> beam.Map(lambda r: r["n_tokens"]) | "Total" >> beam.CombineGlobally(sum)
             | "Count" >> beam.Map(lambda t: max(1, math.ceil(t / cfg.shard_tokens))))

    def key(row: Row, n: int) -> tuple[tuple[int, int], tuple[int, Row]]:
        h = _hash(cfg.seed, "order", row["id"], row["repeat"])
        return (h % n, n), (h, row)

    def write(item: tuple[tuple[int, int], Iterable[tuple[int, Row]]]) -> dict:
        (index, n), group = item
        ordered = [r for _, r in sorted(group, key=lambda hr: (hr[0], hr[1]["id"], hr[1]["repeat"]))]
        return write_shard_files(staging, index, n, ordered, vocab_size)

    (rows | "Key" >> beam.Map(key, n=beam.pvalue.AsSingleton(count)) | "Group" >> beam.GroupByKey()
     | "Write" >> beam.Map(write))


def run_shards(cfg: ShardsConfig, workers: int | None = None, beam_args: list[str] | None = None) -> dict:
    workers = workers or os.cpu_count() or 1
    beam_args = beam_args or []
    if not glob.glob(os.path.join(cfg.pool, "kept", "*.parquet")):
        raise FileNotFoundError(f"no curated shards in {cfg.pool}/kept (run `refinery curate` first)")
    tokenizer = load_tokenizer(cfg.tokenizer)
    os.makedirs(cfg.output, exist_ok=True)
    staging = os.path.join(cfg.output, ".staging")
    if os.path.exists(staging):
        shutil.rmtree(staging)
    for folder in FOLDERS:
        os.makedirs(os.path.join(staging, folder))
    started = time.time()
    print(f"[shards] sampling {cfg.budget_tokens:.3g} tokens from {cfg.pool}", file=sys.stderr, flush=True)
    with beam.Pipeline(runner=make_runner(workers, beam_args), options=pipeline_options(workers, beam_args)) as p:
        build_pipeline(p, cfg, staging, tokenizer.vocab_size)

    with open(os.path.join(staging, "domains.json")) as fh:
        domains = json.load(fh)
    excluded: dict[str, dict[str, int]] = {}
    by_source: dict[str, dict[str, int]] = {}
    if os.path.exists(os.path.join(staging, "excluded.json")):
        with open(os.path.join(staging, "excluded.json")) as fh:
            for d, src, why, n in json.load(fh):
                excluded.setdefault(d, {})[why] = excluded.get(d, {}).get(why, 0) + n
                by_source.setdefault(src, {})[why] = by_source.get(src, {}).get(why, 0) + n
    missing = sorted(set(cfg.weights) - set(domains) - set(excluded))
    if missing:
        raise ValueError(f"the mixture names domains with no documents in the pool: {missing}")
    for name in sorted(set(cfg.weights) - set(domains)):  # every document excluded (a profile, say): say so
        domains[name] = {"requested_tokens": int(round(cfg.weights[name] * cfg.budget_tokens)), "available_tokens": 0,
                         "achieved_tokens": 0, "documents": 0, "rows": 0, "rows_by_repeat": {}, "epochs": 0.0,
                         "capped": cfg.weights[name] > 0}  # a share of 0 is met by taking nothing
    total = sum(r["achieved_tokens"] for r in domains.values())
    for name, r in domains.items():
        r["requested_share"] = round(cfg.weights[name], 6)
        r["achieved_share"] = round(r["achieved_tokens"] / total, 6) if total else 0.0
        r["excluded"] = excluded.get(name, {})
    pool_manifest = os.path.join(cfg.pool, "manifest.json")
    manifest = {
        "budget_tokens": cfg.budget_tokens,
        "achieved_tokens": total,
        "seed": cfg.seed,
        "max_epochs": cfg.max_epochs,
        "tokenizer": tokenizer.describe(),
        "token_dtype": "uint16" if tokenizer.vocab_size <= 65536 else "uint32",
        "domains": domains,
        "excluded_not_in_mix": {d: v["not_in_mix"] for d, v in excluded.items() if "not_in_mix" in v},
        "excluded_by_source": by_source,
        "profile": cfg.profile.as_dict() or None,
        "curated_manifest_sha256": sha256_file(pool_manifest) if os.path.exists(pool_manifest) else None,
        "mix_file": os.path.relpath(cfg.mix, cfg.output) if cfg.mix else None,
        "files": {folder: list_shards_any(os.path.join(staging, folder)) for folder in FOLDERS},
        "elapsed_s": round(time.time() - started, 2),
    }
    for name in ("domains.json", "excluded.json"):
        path = os.path.join(staging, name)
        if os.path.exists(path):
            os.remove(path)
    publish(staging, cfg.output, FOLDERS)
    shutil.rmtree(staging)
    write_json(os.path.join(cfg.output, "tokenizer.json"), tokenizer.describe())
    write_json(os.path.join(cfg.output, "manifest.json"), manifest)
    shards_card(cfg.output, manifest)
    return manifest


def list_shards_any(folder: str) -> list[dict]:
    """name, bytes and sha256 of every file in a folder."""
    return [{"path": n, "bytes": os.path.getsize(os.path.join(folder, n)), "sha256": sha256_file(os.path.join(folder, n))}
            for n in sorted(os.listdir(folder))]


def shards_table(manifest: dict) -> str:
    lines = [f"{'domain':<12}{'requested':>11}{'achieved':>11}{'share':>8}{'target':>8}{'epochs':>8}  repeats"]
    for name, r in sorted(manifest["domains"].items()):
        lines.append(f"{name:<12}{r['requested_tokens']:>11,}{r['achieved_tokens']:>11,}{r['achieved_share']:>8.3f}"
                     f"{r['requested_share']:>8.3f}{r['epochs']:>8.2f}  {r['rows_by_repeat']}"
                     + ("  CAPPED: share not met under max_epochs" if r["capped"] else ""))
    return "\n".join(lines)

