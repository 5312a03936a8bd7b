"""Fuzz refinery's readers for a time budget: malformed JSONL, WARC, HTML and Parquet files from successive
seeds (tests/fuzzing.py), each read whole and in byte ranges, every invariant of tests/test_fuzz.py checked.
Prints how many files of each format were checked and every failure (format, seed, the exception), grouped.

    python benchmarks/fuzz_readers.py --minutes 10
    python benchmarks/fuzz_readers.py --format warc --start 5000
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fuzzing  # noqa: E402


HANG_S = 20  # a file that takes longer than this to read is a failure (a loop), not a slow case


class Hang(Exception):
    pass


def _hang(signum: int, frame: object) -> None:
    raise Hang(f"reading took more than {HANG_S} s")


def main() -> None:
    signal.signal(signal.SIGALRM, _hang)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--format", choices=fuzzing.FORMATS, action="append")
    parser.add_argument("--start", type=int, default=1_000_000, help="first seed (the CI test draws its own)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    formats = args.format or list(fuzzing.FORMATS)
    checked: collections.Counter[str] = collections.Counter()
    failures: dict[tuple, list[int]] = collections.defaultdict(list)
    deadline = time.monotonic() + args.minutes * 60
    seed = args.start
    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < deadline:
            for fmt in formats:
                path = os.path.join(tmp, f"{fmt}-{seed}{fuzzing.SUFFIX[fmt]}")
                with open(path, "wb") as fh:
                    fh.write(fuzzing.make(fmt, seed))
                signal.alarm(HANG_S)
                try:
                    fuzzing.check_file(fmt, path)
                except Exception as exc:  # noqa: BLE001
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    failures[(fmt, type(exc).__name__, f"{Path(where.filename).name}:{where.lineno}",
                              str(exc)[:120])].append(seed)
                finally:
                    signal.alarm(0)
                    os.remove(path)
                checked[fmt] += 1
            seed += 1
    print(f"checked in {args.minutes:g} min: " + ", ".join(f"{n} {fmt}" for fmt, n in checked.items())
          + f" (seeds {args.start} to {seed - 1})")
    if not failures:
        print("no failures")
    for (fmt, kind, where, message), seeds in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"FAIL {fmt}: {kind} at {where} on {len(seeds)} seeds (first {seeds[:5]}): {message}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
