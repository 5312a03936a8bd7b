"""The shards job: the chosen mixture materialised from the curated pool for a trainer, as two Beam pipelines.

1. **Measure and plan.** A worker per pool piece (a Parquet row group) reads its documents, sets aside those the
   mixture, the proxies' held-out split or the licence profile exclude, tokenizes the rest once (the ids are
   kept in the work folder, so the writers do not tokenize again) and sends slim records (location, tokens,
   value, cluster size, two id hashes: 48 bytes a document) to one planner per domain (pipelines/write/plan.py).
   The plan (which documents, how many repeats) is saved in the work folder.
2. **Write.** Each pick gets its shard and position from a seeded hash; picks are routed to the piece that holds
   their document (small records again); the piece's worker reads its text back by location with its cached
   token ids and writes one bucket per shard; one writer per shard reads its buckets, orders them and writes its
   Parquet, token, Megatron and provenance files. Nothing holds more than one row group or one shard.

A shard is finished when its marker is written, after its files; a killed run rerun with the same config and
pool writes only the shards that are missing, byte-identical to a clean run.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from pipelines import __version__
from pipelines.config.base import ConfigError
from pipelines.config.shards import ShardsConfig, ShardsTokenizer
from pipelines.read.pool import CuratedPool, id_hash, split_values
from pipelines.runtime.decisions import DATA, data_movement, measure
from pipelines.runtime import storage
from pipelines.runtime.files import arrow_output, atomic_open, sha256_file, write_json
from pipelines.runtime.runner import claim_output, make_runner, pipeline_options, stop_on_interrupt
from pipelines.schema import scores_of
from pipelines.write.datacard import shards_card
from pipelines.write.output import SUCCESS, publish
from pipelines.write.plan import plan_domain, profile_reason, rehydrated_copies, value_of
from pipelines.write.trainer_files import (FORMATS, PROVENANCE_SCHEMA, SHARD_SCHEMA, megatron_dtype, shard_name,
                                           write_shard)
from proxies.tokenizer import BpeTokenizer, ByteTokenizer, Tokenizer, id_dtype

SLIM = np.dtype([("file", "<i4"), ("row", "<i8"), ("n", "<i8"), ("value", "<f8"), ("cluster", "<i4"),
                 ("take", "<u8"), ("order", "<u8")])  # what a planner gets of a document
PICK = np.dtype([("file", "<i4"), ("row", "<i8"), ("repeat", "<i4"), ("n", "<i8"), ("h", "<u8"),
                 ("shard", "<i4")])  # one row of the shards
READ_COLUMNS = ["id", "source", "scores", "license", "consent", "dup_cluster_size"]
ROW_COLUMNS = ["id", "text", "source", "scores", "license", "consent", "source_uri", "locator"]


def load_tokenizer(spec: ShardsTokenizer) -> Tokenizer:
    if spec.kind == "bytes":
        return ByteTokenizer()
    return BpeTokenizer.from_json(storage.read_bytes(spec.path).decode("utf-8"))


def row_hash(order: np.ndarray, repeat: np.ndarray) -> np.ndarray:
    """The seeded position of each (document, repeat): a 64-bit mix of the document's order hash and the repeat."""
    with np.errstate(over="ignore"):
        z = order.astype(np.uint64) + (repeat.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


# ---- 1. measure and plan ----------------------------------------------------------------------------

class Measure(beam.DoFn):
    """(piece index, (file, group)) in; (domain, slim records as bytes) out, and ("excluded", counts)."""

    def __init__(self, cfg: ShardsConfig, pool: CuratedPool, work: str) -> None:
        self.cfg, self.pool, self.work = cfg, pool, work

    def setup(self) -> None:
        self.tokenizer = load_tokenizer(self.cfg.tokenizer)
        self.dtype = id_dtype(self.tokenizer.vocab_size)

    def process(self, item: tuple[int, tuple[int, int]]) -> Iterator[Any]:
        _, (file, group) = item
        cfg = self.cfg
        cache = token_cache(self.work, file, group)
        columns = list(dict.fromkeys(READ_COLUMNS + [cfg.domain_column]))
        columns = [c for c in columns if c in self.pool.schema.names]
        cached = storage.exists(cache)
        if not cached:
            columns.append("text")
        table = self.pool.read_piece(file, group, columns)
        ids = table.column("id").to_pylist()

        def values(name: str) -> list:  # a column the pool may not have reads as nulls
            return table.column(name).to_pylist() if name in table.column_names else [None] * len(ids)

        domains, sources, licenses, consents = (values(c) for c in (cfg.domain_column, "source", "license", "consent"))
        scores = [scores_of(s) for s in values("scores")]
        heldout = split_values(ids) < cfg.exclude_heldout_fraction if cfg.exclude_heldout_fraction else None
        rows = table.column("row").to_numpy()
        keep, excluded = [], {}
        for i, domain in enumerate(domains):
            if cfg.weights.get(domain, 0.0) <= 0:
                why = "not_in_mix"
            elif heldout is not None and heldout[i]:
                why = "eval_heldout"
            else:
                why = profile_reason({"license": licenses[i], "consent": consents[i]}, cfg.profile)
            if why:
                key = (domain or "(none)", sources[i], why)
                excluded[key] = excluded.get(key, 0) + 1
            else:
                keep.append(i)
        for key, n in excluded.items():
            yield beam.pvalue.TaggedOutput("excluded", (key, n))
        if cached:
            saved = load_npz(cache)
            cached_rows, starts = saved["rows"], saved["starts"]
            counts = dict(zip(cached_rows.tolist(), np.diff(starts).tolist()))
            n_tokens = np.array([counts[int(rows[i])] for i in keep], dtype=np.int64)
        else:
            texts = table.column("text").to_pylist()
            parts = [np.append(self.tokenizer.encode(texts[i] or ""), self.tokenizer.eot).astype(self.dtype)
                     for i in keep]
            Metrics.counter(DATA, "text_bytes").inc(sum(len((texts[i] or "").encode()) for i in keep))
            n_tokens = np.array([len(t) for t in parts], dtype=np.int64)
            with atomic_open(cache, "wb") as fh:
                np.savez(fh, rows=rows[keep].astype(np.int64),
                         starts=np.concatenate([[0], np.cumsum(n_tokens)]).astype(np.int64),
                         tokens=np.concatenate(parts) if parts else np.zeros(0, self.dtype))
            Metrics.counter(DATA, "tokenized_documents").inc(len(keep))
        clusters = values("dup_cluster_size")
        by_domain: dict[str, list[tuple]] = {}
        for j, i in enumerate(keep):
            by_domain.setdefault(domains[i], []).append((
                file, int(rows[i]), int(n_tokens[j]), value_of(scores[i], cfg.score), int(clusters[i] or 1),
                id_hash(ids[i], cfg.seed, "take"), id_hash(ids[i], cfg.seed, "order")))
        for domain, records in sorted(by_domain.items()):
            yield measure((domain, np.array(records, dtype=SLIM).tobytes()), "plan_records")


def token_cache(work: str, file: int, group: int) -> str:
    return os.path.join(work, "tokens", f"f{file:06d}-g{group:06d}.npz")


def load_npz(path: str) -> dict[str, np.ndarray]:
    with storage.open(path, "rb") as fh, np.load(fh) as saved:
        return {name: saved[name] for name in saved.files}


def plan_one(domain: str, parts: Iterable[bytes], cfg: ShardsConfig, work: str) -> tuple[str, dict]:
    """Plan one domain from its slim records; the picks go to the work folder, the report comes back."""
    records = np.sort(np.frombuffer(b"".join(parts), dtype=SLIM), order=["file", "row"])
    copies = None
    if cfg.rehydrate.enabled:
        r = cfg.rehydrate
        copies = rehydrated_copies(records["cluster"], records["value"], r.copies, r.min_value, cfg.max_epochs)
    docs, reps, report = plan_domain(records["take"], records["n"], records["value"],
                                     cfg.weights[domain] * cfg.budget_tokens, cfg.max_epochs,
                                     tol=0.004 * cfg.budget_tokens, copies=copies)
    picks = np.zeros(len(docs), dtype=PICK)
    for name in ("file", "row", "n"):
        picks[name] = records[name][docs]
    picks["repeat"] = reps
    picks["h"] = row_hash(records["order"][docs], reps)
    if copies is not None:
        report["rehydrated_documents"] = int((copies > 1).sum())
    path = os.path.join(work, "plan", hashlib.sha256(domain.encode()).hexdigest()[:16] + ".npy")
    with atomic_open(path, "wb") as fh:
        np.save(fh, picks)
    report["plan_file"] = os.path.basename(path)
    return domain, report


def build_plan(p: beam.Pipeline, cfg: ShardsConfig, pool: CuratedPool, work: str) -> None:
    measured = (p | "Pieces" >> beam.Create(list(enumerate(pool.pieces()))) | "SpreadPieces" >> beam.Reshuffle()
                | "Measure" >> beam.ParDo(Measure(cfg, pool, work)).with_outputs("excluded", main="slim"))
    (measured.excluded | "SumExcluded" >> beam.CombinePerKey(sum) | "ExcludedList" >> beam.combiners.ToList()
     | "WriteExcluded" >> beam.Map(lambda items: write_json(
         os.path.join(work, "excluded.json"), sorted([[d, src, why, n] for (d, src, why), n in items]))))
    (measured.slim | "ByDomain" >> beam.GroupByKey() | "Plan" >> beam.Map(lambda kv: plan_one(kv[0], kv[1], cfg, work))
     | "Reports" >> beam.combiners.ToDict()
     | "WriteReports" >> beam.Map(lambda r: write_json(os.path.join(work, "domains.json"), r)))


# ---- 2. write ---------------------------------------------------------------------------------------

class Route(beam.DoFn):
    """A domain's plan file in; (piece, picks as bytes) out, for the shards not finished yet."""

    def __init__(self, pool: CuratedPool, work: str, count: int, done: set[int]) -> None:
        self.pool, self.work, self.count, self.done = pool, work, count, done

    def process(self, name: str) -> Iterator[tuple[tuple[int, int], bytes]]:
        with storage.open(os.path.join(self.work, "plan", name), "rb") as fh:
            picks = np.load(fh)
        picks["shard"] = (picks["h"] % np.uint64(self.count)).astype(np.int32)
        picks = picks[~np.isin(picks["shard"], list(self.done))]
        for file in np.unique(picks["file"]):
            of_file = picks[picks["file"] == file]
            groups = self.pool.group_of(int(file), of_file["row"])
            for group in np.unique(groups):
                yield measure(((int(file), int(group)), of_file[groups == group].tobytes()), "picks")


class Scatter(beam.DoFn):
    """(piece, picks) in: the piece's text read back by location, with its cached token ids, written as one
    bucket per shard; (shard, rows) out."""

    def __init__(self, cfg: ShardsConfig, pool: CuratedPool, work: str, count: int) -> None:
        self.cfg, self.pool, self.work, self.count = cfg, pool, work, count

    def process(self, item: tuple[tuple[int, int], Iterable[bytes]]) -> Iterator[tuple[int, int]]:
        (file, group), parts = item
        picks = np.sort(np.frombuffer(b"".join(parts), dtype=PICK), order=["shard", "row", "repeat"])
        saved = load_npz(token_cache(self.work, file, group))
        cached_rows, starts, tokens = saved["rows"], saved["starts"], saved["tokens"]
        rows = np.unique(picks["row"])
        columns = [c for c in dict.fromkeys(ROW_COLUMNS + [self.cfg.domain_column]) if c in self.pool.schema.names]
        table = self.pool.take(file, group, rows, columns)
        at = np.searchsorted(rows, picks["row"])  # each pick's row of `table`
        cached = np.searchsorted(cached_rows, picks["row"])
        for shard in np.unique(picks["shard"]):
            mine = picks["shard"] == shard
            sel = at[mine]
            ids = [tokens[starts[c]:starts[c + 1]].tobytes() for c in cached[mine]]
            bucket = pa.table({
                "h": pa.array(picks["h"][mine]), "file": pa.array(picks["file"][mine]),
                "row": pa.array(picks["row"][mine]), "repeat": pa.array(picks["repeat"][mine]),
                **{c: table.column(c).take(pa.array(sel)) for c in columns if c != "row"},
                "tokens": pa.array(ids, pa.large_binary()),
            })
            path = os.path.join(self.work, "buckets", shard_name(int(shard), self.count),
                                f"f{file:06d}-g{group:06d}.parquet")
            storage.makedirs(os.path.dirname(path))
            with arrow_output(path) as target:
                pq.write_table(bucket, target, compression="zstd", compression_level=1)
            yield int(shard), int(mine.sum())


class WriteShard(beam.DoFn):
    """(shard, counts) in: the shard's buckets read, ordered by position and written as its files; then its
    marker, which makes it finished."""

    def __init__(self, cfg: ShardsConfig, work: str, staging: str, count: int, vocab_size: int) -> None:
        self.cfg, self.work, self.staging, self.count, self.vocab_size = cfg, work, staging, count, vocab_size

    def process(self, item: tuple[int, Iterable[int]]) -> Iterator[str]:
        shard, counts = item
        name = shard_name(shard, self.count)
        folder = os.path.join(self.work, "buckets", name)
        tables = []
        for p in storage.listdir(folder):
            with storage.arrow_input(os.path.join(folder, p)) as source:
                tables.append(pq.read_table(source))
        if sum(t.num_rows for t in tables) != sum(counts):
            raise RuntimeError(f"{name}: its buckets hold {sum(t.num_rows for t in tables)} rows, {sum(counts)} "
                               "were routed to it")
        domain = self.cfg.domain_column
        if tables:
            rows = pa.concat_tables(tables, promote_options="default")
            rows = rows.take(pc.sort_indices(rows, [(k, "ascending") for k in ("h", "file", "row", "repeat")]))
        else:
            rows = None
        n = 0 if rows is None else rows.num_rows

        def col(name: str, type_: pa.DataType) -> pa.Array:
            if rows is None or name not in rows.column_names:
                return pa.nulls(n, type_)
            return rows.column(name).combine_chunks().cast(type_)

        dtype = id_dtype(self.vocab_size)
        tokens, lengths = np.zeros(0, dtype), np.zeros(0, np.int64)
        if rows is not None:  # the ids straight from Arrow's buffers: no Python object per row
            ids = rows.column("tokens").combine_chunks()
            offsets = np.frombuffer(ids.buffers()[1], np.int64)[ids.offset: ids.offset + len(ids) + 1]
            tokens = np.frombuffer(ids.buffers()[2], np.uint8)[offsets[0]: offsets[-1]].view(dtype)
            lengths = np.diff(offsets) // dtype.itemsize
            rows = rows.drop_columns(["tokens"])
        out = pa.table({
            "id": col("id", pa.string()), "repeat": col("repeat", pa.int32()), "text": col("text", pa.string()),
            "source": col("source", pa.string()), "domain": col(domain, pa.string()),
            "scores": col("scores", SHARD_SCHEMA.field("scores").type), "n_tokens": pa.array(lengths, pa.int64()),
            "license": col("license", pa.string()), "consent": col("consent", pa.string())}, schema=SHARD_SCHEMA)
        prov = pa.table({
            "shard": pa.array([name] * n, pa.string()), "position": pa.array(np.arange(n, dtype=np.int64)),
            "id": col("id", pa.string()), "repeat": col("repeat", pa.int32()),
            "source_uri": col("source_uri", pa.string()), "locator": col("locator", pa.string()),
            "source": out.column("source"), "domain": out.column("domain"), "license": out.column("license"),
            "consent": out.column("consent"), "n_tokens": out.column("n_tokens")}, schema=PROVENANCE_SCHEMA)
        files = write_shard(self.staging, name, out, prov, tokens, lengths, self.vocab_size, self.cfg.formats)
        write_json(os.path.join(self.staging, "done", name + ".json"),
                   {"rows": n, "tokens": int(lengths.sum()), "files": files})
        storage.rmtree(folder)
        Metrics.counter(DATA, "shards_written").inc()
        yield name


def build_write(p: beam.Pipeline, cfg: ShardsConfig, pool: CuratedPool, work: str, staging: str, plans: list[str],
                count: int, done: set[int], vocab_size: int) -> None:
    routed = (p | "Plans" >> beam.Create(plans) | "Route" >> beam.ParDo(Route(pool, work, count, done))
              | "ByPiece" >> beam.GroupByKey() | "Scatter" >> beam.ParDo(Scatter(cfg, pool, work, count)))
    every = p | "Shards" >> beam.Create([(s, 0) for s in range(count) if s not in done])
    ((routed, every) | "AllShards" >> beam.Flatten() | "ByShard" >> beam.GroupByKey()
     | "Write" >> beam.ParDo(WriteShard(cfg, work, staging, count, vocab_size)))


# ---- driver -----------------------------------------------------------------------------------------

def _run_key(cfg: ShardsConfig, pool: CuratedPool, tokenizer: Tokenizer) -> str:
    body = json.dumps([cfg.model_dump(mode="json"), pool.manifest_hash, tokenizer.describe(), __version__],
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def check_domains(cfg: ShardsConfig, pool: CuratedPool) -> None:
    """Every domain the mixture names is in the pool's domain column: one line for the user otherwise."""
    pool.require(cfg.domain_column, "domain_column")
    present: set[str] = set()
    for values in pool.values(cfg.domain_column):
        present.update(v for v in pc.unique(values).to_pylist() if v is not None)
    missing = sorted(set(cfg.weights) - present)
    if missing:
        raise ConfigError(f"weights: the pool's {cfg.domain_column!r} column has no domain {', '.join(missing)} "
                          f"(it has: {', '.join(sorted(present)) or 'none'})")


def _check_budget(cfg: ShardsConfig, domains: dict[str, dict]) -> None:
    available = sum(r["available_tokens"] for r in domains.values())
    if available * math.floor(cfg.max_epochs) < cfg.budget_tokens * 0.99:
        raise ConfigError(f"budget_tokens: {cfg.budget_tokens:,.0f} tokens cannot be met: the mixture's domains hold "
                          f"{available:,} tokens after exclusions, {available * math.floor(cfg.max_epochs):,} at "
                          f"max_epochs {cfg.max_epochs:g}")


def _beam(workers: int, beam_args: list[str]) -> beam.Pipeline:
    return beam.Pipeline(runner=make_runner(workers, beam_args), options=pipeline_options(workers, beam_args))


def run_shards(cfg: ShardsConfig, workers: int | None = None, beam_args: list[str] | None = None) -> dict:
    """Plan and write the shards; publish OUTPUT/{parquet,tokens,megatron,provenance}/, manifest.json, the card.
    A rerun after a crash reuses the plan and token ids in OUTPUT/.work and the finished shards in .staging."""
    workers = workers or os.cpu_count() or 1
    beam_args = beam_args or []
    pool = CuratedPool(cfg.pool)
    tokenizer = load_tokenizer(cfg.tokenizer)
    check_domains(cfg, pool)
    key = _run_key(cfg, pool, tokenizer)
    created = not storage.exists(cfg.output)
    with claim_output(cfg.output), stop_on_interrupt():
        try:
            return _run(cfg, workers, beam_args, pool, tokenizer, key)
        except ConfigError:
            _forget(cfg.output, created)
            raise


def _forget(output: str, created: bool) -> None:
    """After a user error found part-way: nothing of the run stays (the output folder too, if this run made it)."""
    for name in (".work", ".staging"):
        storage.rmtree(os.path.join(output, name))
    if created and set(storage.listdir(output)) <= {".refinery"}:
        storage.rmtree(output)


def _read_json(path: str) -> dict:
    try:
        return json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return {}


def _run(cfg: ShardsConfig, workers: int, beam_args: list[str], pool: CuratedPool, tokenizer: Tokenizer,
         key: str) -> dict:
    staging, work = os.path.join(cfg.output, ".staging"), os.path.join(cfg.output, ".work")
    key_file = os.path.join(work, "key.json")
    if _read_json(key_file).get("key") != key:
        for folder in (staging, work):  # another config or pool: nothing of it can be reused
            storage.rmtree(folder)
        storage.makedirs(work)
        write_json(key_file, {"key": key})
    for folder in (os.path.join(work, "tokens"), os.path.join(work, "plan"), os.path.join(staging, "done")):
        storage.makedirs(folder)
    started = time.time()
    movement: dict[str, Any] = {}
    if not storage.exists(os.path.join(work, "domains.json")):
        print(f"[shards] measuring and planning {pool.rows:,} documents of {cfg.pool}", file=sys.stderr, flush=True)
        began = time.time()
        with _beam(workers, beam_args) as p:
            build_plan(p, cfg, pool, work)
        movement["plan"] = {**data_movement(p.result), "wall_s": round(time.time() - began, 2)}
    domains = _read_json(os.path.join(work, "domains.json"))
    excluded_rows = _read_json(os.path.join(work, "excluded.json")) or []
    excluded: dict[str, dict[str, int]] = {}
    by_source: dict[str, dict[str, int]] = {}
    for d, src, why, n in excluded_rows:
        excluded.setdefault(d, {})[why] = excluded.get(d, {}).get(why, 0) + n
        by_source.setdefault(src, {})[why] = by_source.get(src, {}).get(why, 0) + n
    for name in sorted(set(cfg.weights) - set(domains)):  # every document excluded (a profile, say): say so
        domains[name] = {"requested_tokens": int(round(cfg.weights[name] * cfg.budget_tokens)), "available_tokens": 0,
                         "achieved_tokens": 0, "documents": 0, "rows": 0, "rows_by_repeat": {}, "epochs": 0.0,
                         "capped": cfg.weights[name] > 0}  # a share of 0 is met by taking nothing
    _check_budget(cfg, domains)
    total = sum(r["achieved_tokens"] for r in domains.values())
    count = max(1, math.ceil(total / cfg.shard_tokens))
    done_folder = os.path.join(staging, "done")
    finished = set(storage.listdir(done_folder))
    done = {i for i in range(count) if shard_name(i, count) + ".json" in finished}
    plans = sorted(r.pop("plan_file") for r in domains.values() if "plan_file" in r)
    if len(done) < count:
        print(f"[shards] writing {count - len(done)} of {count} shards ({total:,} tokens)", file=sys.stderr, flush=True)
        began = time.time()
        with _beam(workers, beam_args) as p:
            build_write(p, cfg, pool, work, staging, plans, count, done, tokenizer.vocab_size)
        movement["write"] = {**data_movement(p.result), "wall_s": round(time.time() - began, 2)}
    for name, r in domains.items():
        r.pop("plan_file", None)
        r["requested_share"] = round(cfg.weights[name], 6)
        r["achieved_share"] = round(r["achieved_tokens"] / total, 6) if total else 0.0
        r["excluded"] = excluded.get(name, {})
    folders = ["provenance", *cfg.formats]
    pool_manifest = os.path.join(cfg.pool, "manifest.json")
    manifest = {
        "budget_tokens": cfg.budget_tokens,
        "achieved_tokens": total,
        "seed": cfg.seed,
        "max_epochs": cfg.max_epochs,
        "tokenizer": tokenizer.describe(),
        "token_dtype": str(id_dtype(tokenizer.vocab_size)),
        "megatron_dtype": str(megatron_dtype(tokenizer.vocab_size)) if "megatron" in cfg.formats else None,
        "formats": list(cfg.formats),
        "rehydrate": cfg.rehydrate.model_dump(mode="json") if cfg.rehydrate.enabled else None,
        "domains": domains,
        "excluded_not_in_mix": {d: v["not_in_mix"] for d, v in excluded.items() if "not_in_mix" in v},
        "excluded_by_source": by_source,
        "profile": cfg.profile.as_dict() or None,
        "curated_manifest_sha256": sha256_file(pool_manifest),
        "mix_file": storage.relpath(cfg.mix, cfg.output) if cfg.mix else None,
        "files": {folder: list_shards_any(os.path.join(staging, folder) if storage.isdir(os.path.join(staging, folder))
                                          else os.path.join(cfg.output, folder)) for folder in folders},
        "shards_resumed": len(done),
        "data_movement": movement,
        "elapsed_s": round(time.time() - started, 2),
    }
    storage.remove(os.path.join(cfg.output, SUCCESS))
    publish(staging, cfg.output, tuple(folders), {f: [e["path"] for e in manifest["files"][f]] for f in folders})
    for folder in set(FORMATS) - set(folders):  # an earlier run's format that this one does not write
        storage.rmtree(os.path.join(cfg.output, folder))
    write_json(os.path.join(cfg.output, "tokenizer.json"), tokenizer.describe())
    write_json(os.path.join(cfg.output, "manifest.json"), manifest)
    shards_card(cfg.output, manifest)
    storage.write_bytes(os.path.join(cfg.output, SUCCESS), b"")
    storage.rmtree(staging)
    storage.rmtree(work)
    return manifest


def list_shards_any(folder: str) -> list[dict]:
    """name, bytes and sha256 of every file in a folder."""
    return [{"path": n, "bytes": storage.getsize(os.path.join(folder, n)), "sha256": sha256_file(os.path.join(folder, n))}
            for n in storage.listdir(folder)]


def shards_table(manifest: dict) -> str:
    lines = [f"{'domain':<12}{'requested':>11}{'achieved':>11}{'share':>8}{'target':>8}{'epochs':>8}  repeats"]
    for name, r in sorted(manifest["domains"].items()):
        lines.append(f"{name:<12}{r['requested_tokens']:>11,}{r['achieved_tokens']:>11,}{r['achieved_share']:>8.3f}"
                     f"{r['requested_share']:>8.3f}{r['epochs']:>8.2f}  {r['rows_by_repeat']}"
                     + ("  CAPPED: share not met under max_epochs" if r["capped"] else ""))
    return "\n".join(lines)
