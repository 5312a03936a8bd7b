"""The curate job: stage every unit (read, extract, filter, score, sketch), decide on small records (classify,
exact, URL and MinHash dedup), then stream the staged rows into Parquet shards, as one Apache Beam pipeline.

Every input record leaves as exactly one kept or rejected row. Counts go through Beam Metrics (namespace
`refinery`, names `<source>/read`, `<source>/<stage:rule>`, `<source>/kept`); the driver checks
`kept + rejected == read` for every source before it publishes anything. How data moves: the worker that reads a
unit writes its text once (pipelines/runtime/units.py); the shuffles after it carry packed hashes, ranks and row
numbers (pipelines/runtime/decisions.py); the final write reads the staged text back without a shuffle
(pipelines/write/output.py).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from pipelines import __version__
from pipelines.filter.classify import Classify
from pipelines.config.base import ConfigError
from pipelines.config.curate import CurateConfig, check_inputs_outside_output
from pipelines.write.datacard import curate_card, import_charts
from pipelines.lang.words import missing_segmenters, segmenter_name
from pipelines.runtime.decisions import NAMESPACE, Decisions, data_movement, measure, offsets
from pipelines.dedup.keyed import ExactDedup, UrlDedup
from pipelines.dedup.near import MinHashDedup, write_audit
from pipelines.runtime import storage
from pipelines.runtime.files import read_parquet, sha256_file, write_json
from pipelines.write.output import KINDS, SUCCESS, WriteShards, list_shards, publish
from pipelines.runtime.later import import_later
from pipelines.runtime.progress import watch
from pipelines.runtime.claims import Claims
from pipelines.extract.extract import HtmlExtractor
from pipelines.extract.sandbox import discard_spares
from pipelines.runtime.runner import (claim_output, local_threads, make_runner, pipeline_options, stop_on_interrupt,
                                      threads_suit)
from pipelines.schema import STAGES
from pipelines.read.splits import Unit, plan_units
from pipelines.runtime.staging import unit_folder
from pipelines.runtime.units import StageUnit, restaged_notes


def build_pipeline(p: beam.Pipeline, cfg: CurateConfig, units: list[Unit], staging: str, work: str,
                   progress_dir: str | None = None, partitions: int = 4, claims: Claims | None = None) -> None:
    """The whole curate job; `partitions` is how many groups each dedup shuffle spreads its records over;
    `claims` lets workers that are threads of one process share out the units (runtime/claims.py)."""
    keys = [u.key() for u in units]
    folders = [unit_folder(work, k) for k in keys]
    infos = (
        p
        | "Units" >> beam.Create(list(enumerate(units)))
        | "MeasureUnits" >> beam.Map(measure, "units")
        | "SpreadUnits" >> beam.Reshuffle()
        | "Stage" >> beam.ParDo(StageUnit(cfg, work, keys, progress_dir, claims))
    )
    starts = infos | "Infos" >> beam.combiners.ToList() | "Starts" >> beam.Map(offsets, len(units))
    decided = infos | "Nothing" >> beam.MapTuple(lambda index, info: (index, Decisions()))
    if cfg.classifiers.enabled:
        classified = decided | "Classify" >> Classify(cfg.classifiers, folders)
        decided = classified["decided"]
        classified["thresholds"] | "WriteThresholds" >> beam.Map(
            write_audit, os.path.join(staging, "classifier_thresholds.json"))
    d = cfg.dedup
    if d.enabled and d.exact:
        decided = decided | "ExactDedup" >> ExactDedup(d, folders, partitions)
    if d.enabled and d.url:
        decided = decided | "UrlDedup" >> UrlDedup(d, folders, partitions)
    if d.enabled and d.minhash.enabled:
        near = decided | "MinHashDedup" >> MinHashDedup(d, folders, partitions, starts)
        decided = near["decided"]
        near["audit"] | "WriteAudit" >> beam.Map(write_audit, os.path.join(staging, "minhash_audit.json"))
    decided | "Write" >> WriteShards(staging, folders, cfg.write)


# ---- driver ---------------------------------------------------------------------------------------

@dataclass
class CurateResult:
    output: str
    stats: dict[str, Any]
    manifest: dict[str, Any]


def list_inputs(cfg: CurateConfig) -> list[tuple[str, str]]:
    """(source name, absolute path) of every input file; a file claimed by two sources is an error."""
    owner: dict[str, str] = {}
    storage.forget()  # sizes and stamps are listed afresh for each run
    for source in cfg.sources:
        for path in cfg.source_files(source):
            if path in owner:
                raise ConfigError(f"sources[{source.name}].paths: {path} is also matched by source {owner[path]!r}")
            owner[path] = source.name
    check_inputs_outside_output(cfg, list(owner))
    return sorted(((name, path) for path, name in owner.items()), key=lambda x: (x[0], x[1]))


def read_counters(result: Any, namespace: str = NAMESPACE) -> dict[str, dict[str, int]]:
    """{source: {name: value}} from the pipeline's Beam Metrics."""
    out: dict[str, dict[str, int]] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        source, name = c.key.metric.name.split("/", 1)
        out.setdefault(source, {})
        out[source][name] = out[source].get(name, 0) + int(value or 0)
    return out


def range_bytes(files: list[tuple[str, str]], split_bytes: int, units: int = 64) -> int:
    """The byte range a large file is read in: `extract.split_bytes`, or less when that gives fewer than `units`
    ranges over all inputs, but not under 1 MiB. Each unit is one worker's task, handed out in turn before the
    run starts: with a few units a side, one worker's pages can take far longer than another's (eight WARC files
    of WCXB pages, 11 units: 56 against 38 CPU seconds, and one core idle for the last fifth of the run)."""
    total = 0
    for _, path in files:
        with contextlib.suppress(OSError):
            total += storage.getsize(path)
    return max(min(split_bytes, 1 << 20), min(split_bytes, math.ceil(total / units)))


def dedup_partitions(units: list[Unit]) -> int:
    """Groups of each dedup shuffle: one per 64 MiB of input, 4 to 4096."""
    size = 0
    for unit in units:
        with contextlib.suppress(OSError):
            size += (unit.end if unit.end is not None else storage.getsize(unit.path)) - unit.start
    return max(4, min(4096, math.ceil(size / (64 << 20))))


def compute_stats(cfg: CurateConfig, staging: str, counters: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per source and per stage: read, kept, rejected by reason, characters; checked against the counters."""
    sources: dict[str, Any] = {}
    for source in cfg.sources:
        sources[source.name] = {"read": counters.get(source.name, {}).get("read", 0), "kept": 0, "rejected": 0,
                                "rejected_by_reason": {}, "chars_kept": 0, "stages": {}}
    rejected_chars: dict[tuple[str, str], int] = {}
    languages: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        folder = os.path.join(staging, kind)
        for name in storage.listdir(folder):
            keys = ["source", "lang"] + (["reason"] if kind == "rejected" else [])
            with storage.arrow_input(os.path.join(folder, name)) as source:
                table = read_parquet(source, keys + ["n_chars"])
            # counted by Arrow, one row per (source, language, reason): no Python object per document
            for group in table.group_by(keys).aggregate([("n_chars", "count"), ("n_chars", "sum")]).to_pylist():
                s = sources[group["source"]]
                n, chars = group["n_chars_count"], group["n_chars_sum"] or 0
                lang = languages.setdefault(group["lang"] or "unknown",
                                            {"read": 0, "kept": 0, "rejected": 0, "rejected_by_reason": {}})
                lang["read"] += n
                if kind == "kept":
                    lang["kept"] += n
                else:
                    lang["rejected"] += n
                    lang["rejected_by_reason"][group["reason"]] = lang["rejected_by_reason"].get(group["reason"], 0) + n
                if kind == "kept":
                    s["kept"] += n
                    s["chars_kept"] += chars
                else:
                    reason = group["reason"]
                    s["rejected"] += n
                    s["rejected_by_reason"][reason] = s["rejected_by_reason"].get(reason, 0) + n
                    rejected_chars[(group["source"], reason)] = rejected_chars.get((group["source"], reason), 0) + chars
    problems = []
    for name, s in sources.items():
        if s["kept"] + s["rejected"] != s["read"]:
            problems.append(f"{name}: kept {s['kept']} + rejected {s['rejected']} != read {s['read']}")
        metric_kept = counters.get(name, {}).get("kept", 0)
        if metric_kept != s["kept"]:
            problems.append(f"{name}: {s['kept']} kept rows written but the kept counter says {metric_kept}")
        # the funnel: documents (and characters, from extraction on) entering and leaving each stage
        docs_in = s["read"]
        chars_in = None
        for stage in STAGES:
            reasons = {r: n for r, n in s["rejected_by_reason"].items() if r.startswith(stage + ":")}
            lost = sum(reasons.values())
            chars_lost = sum(v for (src, r), v in rejected_chars.items() if src == name and r in reasons)
            entry = {"in": docs_in, "rejected": lost, "out": docs_in - lost, "rejected_by_reason": reasons}
            if chars_in is not None:
                entry["chars_in"] = chars_in
                entry["chars_rejected"] = chars_lost
            s["stages"][stage] = entry
            docs_in -= lost
            if stage == "extract":
                chars_in = s["chars_kept"] + sum(
                    v for (src, r), v in rejected_chars.items()
                    if src == name and r.split(":")[0] not in ("read", "extract"))
            elif chars_in is not None:
                chars_in -= chars_lost
    if problems:
        raise RuntimeError("accounting check failed, nothing published:\n  " + "\n  ".join(problems))
    totals = {k: sum(s[k] for s in sources.values()) for k in ("read", "kept", "rejected", "chars_kept")}
    warnings = []
    no_ocr = sum(s["rejected_by_reason"].get("extract:ocr_unavailable", 0) for s in sources.values())
    if no_ocr:
        warnings.append(f"{no_ocr} PDF(s) needed OCR but no OCR engine could run; they were rejected as "
                        "extract:ocr_unavailable. Install Tesseract (apt-get install tesseract-ocr "
                        "tesseract-ocr-eng) or set extract.pdf.ocr: never.")
    missing = missing_segmenters(list(languages))
    if missing:
        warnings.append("no word segmenter for " + ", ".join(f"{lang} (pip install {pkg})" for lang, pkg in
                        missing.items()) + ": their words were cut one per character, with the table's thresholds "
                        "for that; pip install 'refinery[languages]' installs them all")
    return {"sources": sources, "totals": totals, "languages": by_language(languages, cfg.filters.language.report_min_docs),
            "segmenters": {lang: segmenter_name(lang) for lang in sorted(languages) if lang != "unknown"},
            "config_hash": cfg.hash, "warnings": warnings}


def by_language(languages: dict[str, dict[str, Any]], min_docs: int) -> dict[str, dict[str, Any]]:
    """Read, kept and rejected by reason per language, most read first; languages with fewer than `min_docs`
    documents read are summed as `other`; `unknown` holds rows rejected before language ID."""
    out: dict[str, dict[str, Any]] = {}
    for lang, entry in sorted(languages.items(), key=lambda kv: (-kv[1]["read"], kv[0])):
        name = lang if entry["read"] >= min_docs or lang == "unknown" else "other"
        into = out.setdefault(name, {"read": 0, "kept": 0, "rejected": 0, "rejected_by_reason": {}})
        for key in ("read", "kept", "rejected"):
            into[key] += entry[key]
        for reason, n in entry["rejected_by_reason"].items():
            into["rejected_by_reason"][reason] = into["rejected_by_reason"].get(reason, 0) + n
    for entry in out.values():
        entry["rejected_by_reason"] = dict(sorted(entry["rejected_by_reason"].items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"refinery": __version__, "python": sys.version.split()[0]}
    for pkg in ("apache-beam", "pyarrow", "trafilatura", "warcio", "py3langid", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def model_hashes(cfg: CurateConfig) -> dict[str, str]:
    """sha256 (first 16 hex digits) of every model the run used."""
    from classifiers.langid import model_hash

    engine = cfg.filters.language.engine
    out = {f"langid:{engine}": model_hash(engine)}
    if cfg.classifiers.enabled:
        for m in cfg.classifiers.models:
            out[f"quality_{m.name}"] = sha256_file(m.path)[:16]
        if cfg.classifiers.domain:
            out["domain"] = sha256_file(cfg.classifiers.domain.path)[:16]
    return out


def summary_table(stats: dict[str, Any]) -> str:
    lines = [f"{'source':<14}{'read':>8}{'kept':>8}{'rejected':>10}  rejected by reason"]
    for name, s in stats["sources"].items():
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(s["rejected_by_reason"].items(), key=lambda x: -x[1]))
        lines.append(f"{name:<14}{s['read']:>8}{s['kept']:>8}{s['rejected']:>10}  {reasons or '-'}")
    t = stats["totals"]
    lines.append(f"{'total':<14}{t['read']:>8}{t['kept']:>8}{t['rejected']:>10}")
    return "\n".join(lines)


def _run_key(cfg: CurateConfig, units: list[Unit]) -> str:
    """Names this run's checkpoints and staged output: the config, refinery's version and every input unit
    (path, size, modification time, range). Anything else and a rerun starts over."""
    import hashlib

    body = "\n".join([cfg.hash, __version__] + [u.key() for u in units])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _finish(cfg: CurateConfig, staging: str, work_root: str, ready: dict[str, Any]) -> CurateResult:
    """Publish a staged, checked output. Every step may be repeated: a crash here is finished by the next run.

    `_SUCCESS` goes first and comes back last: a reader that waits for it (Spark, Hadoop and many bucket
    pipelines do) never reads a half-published output. `ready.json` is the last staged file removed, so a crash
    while cleaning up is finished without running the job again."""
    stats, manifest = ready["stats"], ready["manifest"]
    storage.remove(os.path.join(cfg.output, SUCCESS))
    publish(staging, cfg.output, names={kind: [s["path"] for s in manifest[kind]] for kind in KINDS})
    write_json(os.path.join(cfg.output, "stats.json"), stats)
    write_json(os.path.join(cfg.output, "manifest.json"), manifest)
    curate_card(cfg.output, stats, manifest)
    storage.write_bytes(os.path.join(cfg.output, SUCCESS), b"")
    ready_path = os.path.join(staging, "ready.json")
    for name in storage.listdir(staging):
        if name != "ready.json":
            storage.rmtree(os.path.join(staging, name))
    storage.rmtree(work_root)
    storage.rmtree(staging)
    storage.remove(ready_path)
    return CurateResult(cfg.output, stats, manifest)


def run_curate(cfg: CurateConfig, workers: int | None = None, beam_args: list[str] | None = None,
               show_progress: bool = True, threads: bool | None = None) -> CurateResult:
    """Run the curate pipeline and publish OUTPUT/{kept,rejected}/, stats.json and manifest.json.

    After a crash, the same command resumes: documents checkpointed under OUTPUT/.work/ are not extracted
    again, and an output that was staged and checked but not yet published is published as it is. `threads`
    runs the local workers as threads of this process; None picks by the sources' formats (threads_suit in
    runtime/runner.py says when that pays).
    """
    workers = workers or os.cpu_count() or 1
    beam_args = beam_args or []
    if threads is None:
        threads = threads_suit({s.format for s in cfg.sources})
    files = list_inputs(cfg)
    units = plan_units(files, {s.name: s.format for s in cfg.sources}, range_bytes(files, cfg.extract.split_bytes))
    key = _run_key(cfg, units)
    with claim_output(cfg.output), stop_on_interrupt():
        return _run(cfg, workers, beam_args, show_progress, files, units, key, threads)


def _import_grouping() -> None:
    """Arrow's query engine, which Table.group_by imports when first used (a fifth of a second; nothing else in
    the job imports it since staged pieces are read without Arrow's dataset layer): queued for the import
    thread (runtime/later.py), so the stats and the data card at the job's end do not wait for it."""
    importlib.import_module("pyarrow.acero")


def _run(cfg: CurateConfig, workers: int, beam_args: list[str], show_progress: bool, files: list,
         units: list[Unit], key: str, threads: bool) -> CurateResult:
    staging = os.path.join(cfg.output, ".staging")
    work_root = os.path.join(cfg.output, ".work")
    ready_path = os.path.join(staging, "ready.json")
    if storage.exists(ready_path):
        ready = json.loads(storage.read_bytes(ready_path))
        if ready.get("key") == key:  # the last run crashed while publishing: finish it
            return _finish(cfg, staging, work_root, ready)
    storage.rmtree(staging)  # left by an interrupted run: never published, safe to drop
    work = os.path.join(work_root, key)
    if not cfg.resume.enabled:
        storage.rmtree(work)  # resume off: every unit is staged again
    for name in storage.listdir(work_root):  # units staged for another config or other inputs are of no use
        if os.path.join(work_root, name) != work:
            storage.rmtree(os.path.join(work_root, name))
    for kind in KINDS:
        storage.makedirs(os.path.join(staging, kind))
    progress_dir = os.path.join(staging, "progress")
    storage.makedirs(progress_dir)

    started = time.time()
    stop = threading.Event()
    watcher = None
    if show_progress:
        watcher = threading.Thread(target=watch, args=(progress_dir, len(units), stop), daemon=True)
        watcher.start()
    # threads of this process share out the units as they finish theirs; elsewhere the runner deals them
    claims = Claims(units) if local_threads(workers, beam_args, threads) else None
    if claims is not None and {s.format for s in cfg.sources} & {"html", "warc"}:
        HtmlExtractor.prestart(cfg.extract, workers)  # their start-up runs while this process builds the pipeline
    try:
        runner = make_runner(workers, beam_args, threads)
        import_charts()  # for the data card, drawn once the pipeline is done
        import_later(_import_grouping)  # for the stats and the card
        with beam.Pipeline(runner=runner, options=pipeline_options(workers, beam_args)) as p:
            build_pipeline(p, cfg, units, staging, work, progress_dir, dedup_partitions(units), claims)
        result = p.result
    finally:
        if claims is not None:
            claims.forget()
            discard_spares()
        stop.set()
        if watcher is not None:
            watcher.join()

    counters = read_counters(result)
    stats = compute_stats(cfg, staging, counters)
    for field, name in (("minhash", "minhash_audit.json"), ("classifier_thresholds", "classifier_thresholds.json")):
        path = os.path.join(staging, name)
        if storage.exists(path):
            stats[field] = json.loads(storage.read_bytes(path))
    stats["elapsed_s"] = round(time.time() - started, 2)
    stats["workers"] = workers
    stats["threads"] = threads and workers > 1
    stats["input_files"] = len(files)
    stats["input_units"] = len(units)
    stats["resumed"] = sum(c.get("resumed", 0) for c in counters.values())
    stats["units_resumed"] = sum(c.get("units_resumed", 0) for c in counters.values())
    stats["repeated_pages"] = sum(c.get("repeated_pages", 0) for c in counters.values())
    stats["units_restaged"] = sum(c.get("units_restaged", 0) for c in counters.values())
    stats["restaged_units"] = restaged_notes(progress_dir)
    if stats["units_restaged"]:
        print(f"refinery: {stats['units_restaged']} staged unit(s) had damaged pieces and were staged again from "
              "their input (stats.json: restaged_units)", file=sys.stderr, flush=True)
    stats["data_movement"] = data_movement(result)
    manifest = {
        "config_hash": cfg.hash,
        "versions": package_versions(),
        "models": model_hashes(cfg),
        "inputs": {name: sum(1 for n, _ in files if n == name) for name in (s.name for s in cfg.sources)},
        "kept": list_shards(os.path.join(staging, "kept")),
        "rejected": list_shards(os.path.join(staging, "rejected")),
    }
    ready = {"key": key, "stats": stats, "manifest": manifest}
    storage.rmtree(progress_dir)
    write_json(ready_path, ready)  # from here on the output is final: a crash leaves it to be published
    return _finish(cfg, staging, work_root, ready)
