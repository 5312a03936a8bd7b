"""The `refinery` command line: one subcommand per job."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from .config import ConfigError, load_config


def _curate(args: argparse.Namespace, beam_args: list[str]) -> int:
    from .curate import run_curate, summary_table

    cfg = load_config(args.config)
    result = run_curate(cfg, workers=args.workers, beam_args=beam_args, show_progress=not args.quiet)
    print(summary_table(result.stats))
    for warning in result.stats["warnings"]:
        bar = "!" * 100
        print(f"\n{bar}\nWARNING: {warning}\n{bar}", file=sys.stderr)
    print(f"\nwrote {cfg.output}/kept ({len(result.manifest['kept'])} shards), "
          f"{cfg.output}/rejected ({len(result.manifest['rejected'])} shards), stats.json, manifest.json "
          f"in {result.stats['elapsed_s']} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refinery", description="Curate LLM pre-training data and choose its mix.")
    sub = parser.add_subparsers(dest="command", required=True)
    curate = sub.add_parser(
        "curate",
        help="read, extract, filter, deduplicate and write curated Parquet shards",
        description="Unknown options (for example --runner=PortableRunner --job_endpoint=...) go to Apache Beam.",
    )
    curate.add_argument("config", help="curate config (YAML)")
    curate.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes for the local runner (default: the core count)")
    curate.add_argument("--quiet", action="store_true", help="no progress lines")
    curate.set_defaults(func=_curate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.command == "curate" and args.workers < 1:
        parser.error("--workers: expected a number >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args, beam_args)
    except ConfigError as exc:
        print(f"refinery: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
