"""The `refinery` command line: one subcommand per job."""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys

from pipelines import __version__

# Only the standard library at the top: a spawned extractor process imports this module again (multiprocessing
# re-imports the parent's main module), and the config models, numpy and pydantic would cost it 40 MB and a
# fifth of a second. The jobs import what they need when they run.


def _curate(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.curate import load_config
    from pipelines.jobs.curate import run_curate, summary_table

    cfg = load_config(args.config)
    result = run_curate(cfg, workers=args.workers, beam_args=beam_args, show_progress=not args.quiet,
                        threads=args.threads)
    print(summary_table(result.stats))
    for warning in result.stats["warnings"]:
        bar = "!" * 100
        print(f"\n{bar}\nWARNING: {warning}\n{bar}", file=sys.stderr)
    print(f"\nwrote {cfg.output}/kept ({len(result.manifest['kept'])} shards), "
          f"{cfg.output}/rejected ({len(result.manifest['rejected'])} shards), stats.json, manifest.json "
          f"in {result.stats['elapsed_s']} s")
    if result.stats.get("resumed"):
        print(f"resumed: {result.stats['resumed']} records came from the checkpoints of an interrupted run")
    return 0


def _dedup_explain(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.curate import MinHashSettings, load_config
    from pipelines.dedup.minhash import bands_for_threshold, explain

    if beam_args:
        raise SystemExit(f"refinery dedup explain: unknown arguments {beam_args}")
    s = load_config(args.config).dedup.minhash if args.config else MinHashSettings()
    bands, rows = args.bands or s.bands, args.rows or s.rows
    print(explain(bands, rows))
    if args.threshold is not None:
        b, r = bands_for_threshold(args.threshold, bands * rows)
        print(f"\nfor a threshold of {args.threshold} with {bands * rows} hash functions, the bands and rows that "
              f"minimise false positives plus false negatives are {b} x {r}:")
        print(explain(b, r))
    return 0


def _swarm(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.swarm import load_swarm_config
    from pipelines.jobs.swarm import run_swarm, swarm_table

    if beam_args:
        raise SystemExit(f"refinery swarm: unknown arguments {beam_args}")
    cfg = load_swarm_config(args.config)
    result = run_swarm(cfg)
    print(swarm_table(result["rows"], result["summary"]))
    print(f"\nwrote {cfg.output}/swarm.parquet ({len(result['rows'])} runs, "
          f"{result['summary']['trained_now']} trained now, the rest from the run cache)")
    return 0


def _classifier_train(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.classifier import load_classifier_config
    from pipelines.jobs.train_classifier import run_train

    if beam_args:
        raise SystemExit(f"refinery classifier train: unknown arguments {beam_args}")
    cfg = load_classifier_config(args.config)
    card = run_train(cfg)
    print(json.dumps({k: card[k] for k in ("name", "labels", "examples", "metrics_heldout", "fasttext")}, indent=2))
    print(f"\nwrote {cfg.output} and {cfg.output}.card.json")
    return 0


def _mix(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.swarm import load_swarm_config
    from pipelines.jobs.mix import mix_table, run_mix

    if beam_args:
        raise SystemExit(f"refinery mix: unknown arguments {beam_args}")
    cfg = load_swarm_config(args.config)
    summary = run_mix(cfg)
    print(mix_table(summary))
    print(f"\nwrote {cfg.output}/mix.yaml and {cfg.output}/report.html")
    return 0


def _shards(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.shards import load_shards_config
    from pipelines.jobs.shards import run_shards, shards_table

    cfg = load_shards_config(args.config)
    manifest = run_shards(cfg, workers=args.workers, beam_args=beam_args)
    print(shards_table(manifest))
    print(f"\nwrote {cfg.output}: {len(manifest['files']['provenance'])} shards, {manifest['achieved_tokens']:,} tokens")
    return 0


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """curate, classifier train, mix and shards, one after another, from one file naming their configs."""
    from pipelines.config.base import load_yaml, validate
    from pipelines.config.run import RunConfig

    cfg = validate(RunConfig, *load_yaml(args.config))
    for name, path in cfg.steps():
        print(f"\n=== refinery {name if name != 'classifier' else 'classifier train'} {path}", flush=True)
        sub = argparse.Namespace(config=path, workers=args.workers, quiet=args.quiet, threads=False)
        func = {"curate": _curate, "classifier": _classifier_train, "mix": _mix, "shards": _shards}[name]
        code = func(sub, beam_args if name in ("curate", "shards") else [])
        if code:
            return code
    return 0


def _config_schema(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.jobs import schema_text

    print(schema_text(args.job), end="")
    return 0


def _config_check(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.config.jobs import check

    job, _ = check(args.config, args.job)
    print(f"{args.config}: a valid {job} config")
    return 0


def config_keys(job: str) -> str:
    """Every key of a job's config with its default, choices and description, one per line (for --help)."""
    from types import UnionType
    from typing import Literal, Union, get_args, get_origin

    from pipelines.config.base import section_in
    from pipelines.config.jobs import model_of

    lines: list[str] = []

    def walk(model: type, prefix: str) -> None:
        for name, field in model.model_fields.items():
            inner = section_in(field.annotation)
            key = f"{prefix}{name}"
            if inner is not None:  # a section (`X` or `X | None`), or a list of sections
                one = inner is field.annotation or (get_origin(field.annotation) in (Union, UnionType)
                                                     and inner in get_args(field.annotation))
                walk(inner, key + ("." if one else "[]."))
                continue
            default = field.get_default(call_default_factory=True)
            default = list(default) if isinstance(default, tuple) else default
            text = f"  {key}  ({'required' if field.is_required() else f'default {json.dumps(default)}'})"
            choices = [get_args(a) for a in (field.annotation, *get_args(field.annotation)) if get_origin(a) is Literal]
            if choices:
                text += f" one of {', '.join(choices[0])}"
            if field.description:
                text += f": {field.description}"
            lines.append(text)

    walk(model_of(job), "")
    return "\n".join(lines)


def _keys_help(job: str, description: str = "") -> dict:
    """Parser arguments whose help ends with the job's config keys, listed only when --help asks (so that other
    commands do not load every job's models)."""

    class Formatter(argparse.RawDescriptionHelpFormatter):
        def format_help(self) -> str:
            return super().format_help() + "\nconfig keys:\n" + config_keys(job) + "\n"

    return {"description": (description + " " if description else "") + f"The config's keys follow; `refinery "
            f"config schema {job}` prints them as a JSON Schema.", "formatter_class": Formatter}


def build_parser() -> argparse.ArgumentParser:
    from pipelines.config.jobs import JOBS

    parser = argparse.ArgumentParser(prog="refinery", description="Curate LLM pre-training data and choose its mix.")
    parser.add_argument("--version", action="version", version=f"refinery {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    curate = sub.add_parser(
        "curate",
        help="read, extract, filter, deduplicate and write curated Parquet shards",
        **_keys_help("curate", "Unknown options (for example --runner=PortableRunner --job_endpoint=...) go to "
                               "Apache Beam."),
    )
    curate.add_argument("config", help="curate config (YAML)")
    curate.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes for the local runner (default: the core count)")
    mode = curate.add_mutually_exclusive_group()
    mode.add_argument("--threads", action="store_true", default=None,
                      help="run the workers as threads of one process (the default where every source is HTML, "
                           "WARC or PDF: extraction runs in its own processes, and Beam is held once)")
    mode.add_argument("--processes", dest="threads", action="store_false", default=None,
                      help="run the workers as processes (the default where a source is JSONL, Parquet or text)")
    curate.add_argument("--quiet", action="store_true", help="no progress lines")
    curate.set_defaults(func=_curate)

    classifier = sub.add_parser("classifier", help="fastText quality and domain classifiers")
    classifier_sub = classifier.add_subparsers(dest="classifier_command", required=True)
    train = classifier_sub.add_parser("train", help="train a fastText classifier and write its card",
                                      **_keys_help("classifier"))
    train.add_argument("config", help="classifier config (YAML)")
    train.set_defaults(func=_classifier_train)

    swarm = sub.add_parser("swarm", help="train proxy models on mixtures of a curated pool and score them",
                           **_keys_help("swarm"))
    swarm.add_argument("config", help="swarm config (YAML)")
    swarm.set_defaults(func=_swarm)

    mix = sub.add_parser("mix", help="choose mixture weights: swarm, fit, optimise, confirm, report",
                         **_keys_help("mix"))
    mix.add_argument("config", help="mix config (YAML: the swarm settings and a mix section)")
    mix.set_defaults(func=_mix)

    shards = sub.add_parser("shards", help="materialise the chosen mixture as training shards",
                            **_keys_help("shards"))
    shards.add_argument("config", help="shards config (YAML)")
    shards.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    shards.set_defaults(func=_shards)

    run = sub.add_parser("run", help="curate, classifier train, mix and shards in one command", **_keys_help("run"))
    run.add_argument("config", help="a YAML file naming the curate, mix and shards configs")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=_run)

    config = sub.add_parser("config", help="a job's config: its JSON Schema, or check a file without running it")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    schema = config_sub.add_parser("schema", help="print the JSON Schema of a job's config")
    schema.add_argument("job", choices=JOBS)
    schema.set_defaults(func=_config_schema)
    check = config_sub.add_parser("check", help="validate a config file (every problem at once), run nothing")
    check.add_argument("config", help="a config file (YAML)")
    check.add_argument("--job", choices=JOBS, help="the job it is for (default: told by its keys)")
    check.set_defaults(func=_config_check)

    dedup = sub.add_parser("dedup", help="MinHash deduplication helpers")
    dedup_sub = dedup.add_subparsers(dest="dedup_command", required=True)
    explain = dedup_sub.add_parser("explain", help="probability that a pair at each Jaccard similarity is caught")
    explain.add_argument("--config", help="read bands and rows from this curate config's dedup.minhash")
    explain.add_argument("--bands", type=int, help="LSH bands (default 14 or the config's)")
    explain.add_argument("--rows", type=int, help="rows per band (default 8 or the config's)")
    explain.add_argument("--threshold", type=float, help="also suggest bands x rows for this Jaccard threshold")
    explain.set_defaults(func=_dedup_explain)
    return parser


# Errors the user can fix, by class name: raised in the driver, or inside a Beam worker (where the runner
# re-raises them as a RuntimeError that carries the original class name and message in its text).
USER_ERRORS = ("ConfigError", "LangIdUnavailable", "CheckpointError")
_USER_ERROR_TEXT = re.compile(r"\b(" + "|".join(USER_ERRORS) + r"): (.+?)(?: \[while running [^\]]*\])*$", re.M)


def user_error(exc: BaseException) -> str | None:
    """One line for an error the user can fix (a missing model, a checkpoint to delete, a config mistake found
    late), wherever it was raised; None for anything else."""
    seen = exc
    while seen is not None:
        if type(seen).__name__ in USER_ERRORS:
            return str(seen).splitlines()[0] if str(seen) else type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    matches = _USER_ERROR_TEXT.findall(str(exc))
    return matches[-1][1].strip() if matches else None


def _interrupted() -> None:
    """Ctrl-C or SIGINT: one line and exit 130 at once. Checkpoints hold every finished document; threads and
    worker processes of the runner are not waited for (they end when the driver goes)."""
    print("\nrefinery: interrupted; run the same command again to resume", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(130)


def _report_bugs(kind: type, value: BaseException, tb: object) -> None:
    sys.__excepthook__(kind, value, tb)
    print("\nrefinery: this is a bug in refinery, not in your input or config; please report it on refinery's issue "
          "tracker with the traceback above, `refinery --version` and the command you ran", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from pipelines.config.base import ConfigError
    from pipelines.runtime.worker import DropImportNoise

    sys.excepthook = _report_bugs
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.command in ("curate", "shards", "run") and args.workers < 1:
        parser.error("--workers: expected a number >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(DropImportNoise())
    try:
        return args.func(args, beam_args)
    except ConfigError as exc:
        problems = exc.problems
        print(f"refinery: config error: {problems[0]}", file=sys.stderr)
        for more in problems[1:]:  # every problem at once, one line each
            print(f"refinery: config error: {more}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:  # noqa: BLE001
        if re.search(r"\bKeyboardInterrupt\b", str(exc)):  # the in-process runner re-raises it as a RuntimeError
            _interrupted()
        line = user_error(exc)
        if line is None:
            raise  # refinery's own bug: the traceback, then where to report it (see _report_bugs)
        print(f"refinery: {line}", file=sys.stderr)
        return 2
    return 1

if __name__ == "__main__":
    sys.exit(main())
