"""Entry point of the local runner's worker processes: Beam's SDK harness, printing warnings and errors only.

Beam's own worker command logs every channel it opens at INFO level and ignores the job's log-level option in
this mode; a data engineer watching a run wants the progress lines and real problems, not that.
"""
from __future__ import annotations

import logging
import sys


class DropImportNoise(logging.Filter):
    """Beam warns at import time that Google Cloud client libraries are missing; refinery never needs them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


def main() -> None:
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    handler.addFilter(DropImportNoise())
    handler.setFormatter(logging.Formatter("%(levelname)s worker %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    from apache_beam.runners.worker import sdk_worker_main

    # its start-up notes (no semi-persistent directory, options) are not problems of a local run
    logging.getLogger(sdk_worker_main.__name__).setLevel(logging.ERROR)
    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
