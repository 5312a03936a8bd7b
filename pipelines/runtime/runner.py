"""The Beam runner of a local run, and the guards of a job's driver process: interrupts, the output's lock."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Any, Iterator

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.config.base import ConfigError
from pipelines.runtime import storage


def _names_runner(beam_args: list[str]) -> bool:
    return any(a == "--runner" or a.startswith("--runner=") for a in beam_args)


def pipeline_options(workers: int, beam_args: list[str]) -> PipelineOptions:
    """Standard Beam options pass through untouched; without --runner, `workers` local processes."""
    args = list(beam_args)
    if not _names_runner(args):
        args = [f"--direct_num_workers={workers}"] + args
    return _Options(args)


class _Options(PipelineOptions):
    """Beam's options, with each view (`view_as`) made once per options class. Beam asks for a view about 1,300
    times while it builds and checks the curate pipeline, and each new view parses every option again: about
    a second of the job's serial start. A view holds no values of its own (they are the options' values, shared
    by all views), so the kept view reads and writes the same values a new one would."""

    def view_as(self, cls: type[Any]) -> Any:
        views = self.__dict__.setdefault("_views", {})
        if cls not in views:
            views[cls] = super().view_as(cls)
        return views[cls]


EXTRACTION_BOUND = frozenset({"html", "warc", "pdf"})


def threads_suit(formats: set[str]) -> bool:
    """The default worker mode: threads when every source's work is extraction (HTML, WARC, PDF), which runs in
    each worker's extractor child anyway, so one process holding Beam and the libraries once costs no speed;
    processes when any source is JSONL, Parquet or text, whose work the workers do in Python themselves."""
    return bool(formats) and formats <= EXTRACTION_BOUND


def local_threads(workers: int, beam_args: list[str], threads: bool) -> bool:
    """Whether make_runner's workers are threads of this process (and more than one)."""
    return threads and workers > 1 and not _names_runner(beam_args)


def make_runner(workers: int, beam_args: list[str], threads: bool = False) -> Any:
    """Beam's in-process FnApiRunner, with `workers` worker processes (or threads of this process), unless the
    options name a runner.

    Threads suit inputs whose work is extraction (HTML, WARC, PDF): it runs in each worker's extractor child
    process anyway, and one process holds Beam and the libraries once instead of once per worker. Work done in
    Python by the workers themselves (JSONL and Parquet inputs) shares one core's worth of the interpreter."""
    if _names_runner(beam_args):
        return None  # Beam picks the runner named in the options
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.transforms.environments import EmbeddedPythonGrpcEnvironment, SubprocessSDKEnvironment

    if workers == 1:
        return FnApiRunner()
    if local_threads(workers, beam_args, threads):
        _RUNNER_LOG.addFilter(_MODE_NOTE)
        return FnApiRunner(default_environment=EmbeddedPythonGrpcEnvironment.default())
    # the same subprocess workers as Beam's multi_processing mode, started through refinery's quiet entry point
    command = f"{sys.executable} -m pipelines.runtime.worker"
    _RUNNER_LOG.setLevel(logging.ERROR)
    return FnApiRunner(default_environment=SubprocessSDKEnvironment.from_command_string(command))


class _DropModeNote(logging.Filter):
    """The runner warns that several workers need a `direct_running_mode` option; make_runner gives it the
    workers' environment itself, so on every run of refinery's threads the note would be wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("If direct_num_workers is not equal to 1")


_MODE_NOTE = _DropModeNote()
_RUNNER_LOG = logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner")


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[None]:
    """SIGINT or SIGTERM to the driver ends the run at once (exit 130): the runner would otherwise go on, or
    turn the interrupt into a verdict on the document in hand. Every finished document is in a checkpoint
    already; the runner's workers and the extractor children end when the driver goes."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        print("\nrefinery: interrupted; run the same command again to resume", file=sys.stderr, flush=True)
        for pid in _descendants(os.getpid()):  # the runner's workers would print their lost connections
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os._exit(130)

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


MARKER = ".refinery"
OWN = (MARKER, "manifest.json", ".staging", ".work")  # any of them: the folder is refinery's own
LOCK = ".refinery.lock"  # in a bucket: the object that says a run holds the output
LEASE_S = 90.0           # a lock not renewed for this long was left by a run that died
RENEW_S = 20.0


@contextlib.contextmanager
def claim_output(output: str) -> Iterator[None]:
    """Hold the output folder for one run: it must be new, empty or refinery's own (its `.refinery` marker, or
    the manifest.json of an earlier version), and no other run may hold it (an exclusive lock on the marker;
    in a bucket, a lock object created by a conditional write)."""
    if storage.is_url(output):
        with _claim_bucket(output):
            yield
        return
    import fcntl

    marker = os.path.join(output, MARKER)
    if os.path.isdir(output) and os.listdir(output) and not any(
            os.path.exists(os.path.join(output, n)) for n in (MARKER, "manifest.json", ".staging", ".work")):
        raise ConfigError(f"output: {output} is not empty and was not written by refinery; choose a new or empty "
                          "folder (refinery replaces kept/ and rejected/ in it)")
    try:
        os.makedirs(output, exist_ok=True)
        fh = open(marker, "a+", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"output: cannot write to {output}: {exc.strerror or exc}") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ConfigError(f"output: {output} is being written by another refinery run ({holder}); wait for it "
                              "or choose another output") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"refinery run, pid {os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _claim_bucket(output: str) -> Iterator[None]:
    """The lock object `OUTPUT/.refinery.lock`: created only if absent (If-None-Match), renewed every RENEW_S by
    this run (If-Match on its own ETag), deleted at the end. One not renewed for LEASE_S was left by a run that
    died (a killed process cannot delete it), and is taken over by a conditional overwrite; of two runs racing
    for it, one wins."""
    import json
    import socket
    import time
    import uuid

    lock = storage.join(output, LOCK)
    with storage.user_errors(f"output: {output}"):
        names = set(storage.listdir(output))
        if names and not names & set(OWN + (LOCK, "_SUCCESS")):
            raise ConfigError(f"output: {output} is not empty and was not written by refinery; choose a new or "
                              "empty prefix (refinery replaces kept/ and rejected/ in it)")
        holder = f"refinery run on {socket.gethostname()}, pid {os.getpid()}"
        token = uuid.uuid4().hex  # a create retried after its answer was lost finds its own lock

        def body() -> bytes:
            return json.dumps({"holder": holder, "token": token, "renewed": time.time()}).encode()

        if not storage.create(lock, body()):
            stale = storage.etag(lock)
            try:
                held = json.loads(storage.read_bytes(lock))
            except (OSError, ValueError):
                held = {"holder": "another process", "renewed": time.time()}
            age = time.time() - float(held.get("renewed", 0))
            if held.get("token") != token and (
                    age < LEASE_S or stale is None or not storage.replace_if(lock, body(), stale)):
                raise ConfigError(f"output: {output} is being written by another refinery run "
                                  f"({held.get('holder', 'another process')}, lock renewed {max(0, age):.0f} s ago; "
                                  f"one not renewed for {LEASE_S:.0f} s is taken over); wait for it or choose "
                                  "another output")
        storage.write_bytes(storage.join(output, MARKER), b"refinery output\n")
        mine = [storage.etag(lock)]
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(RENEW_S):
            with contextlib.suppress(Exception):
                if mine[0] and storage.replace_if(lock, body(), mine[0]):
                    mine[0] = storage.etag(lock)
                else:
                    print(f"refinery: warning: the lock on {output} was taken by another run", file=sys.stderr)
                    return

    keeper = threading.Thread(target=renew, daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
        with contextlib.suppress(Exception):
            if storage.etag(lock) == mine[0]:
                storage.remove(lock)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(name))
    except OSError:
        return []
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
