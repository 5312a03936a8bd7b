"""Run an extraction function in a child process with a deadline.

Beam runs DoFns in threads (no SIGALRM) and neither trafilatura nor PDFium nor Tesseract has a time limit of
its own, so each extractor owns one child process. A job that runs past its deadline gets the child killed
(the next job starts a fresh one); a child that dies (out of memory, a crash in native code) fails only the job
it was running. The child may report progress (for example one message per PDF page) while it works.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
from typing import Any, Callable

STARTUP_TIMEOUT_S = 120

# fn(job, setup_value, report) -> result; setup(settings) -> setup_value runs once in the child, before "ready"
JobFn = Callable[[Any, Any, Callable[[Any], None]], Any]


def limit_memory(memory_mb: int | None) -> None:
    """Cap this process's address space (and that of the programs it starts, such as Tesseract): past it an
    allocation fails, so a decompression bomb fails its own job instead of exhausting the machine."""
    if not memory_mb:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb << 20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class Interrupted(Exception):
    """The job is being stopped (SIGINT or SIGTERM reached the extractor): the document in hand gets no verdict,
    and the next run redoes it."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _child(conn: Any, setup: Callable[[Any], Any], fn: JobFn, settings: Any, memory_mb: int | None) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the worker decides, the child finishes its page
    # (it ends when the worker closes the pipe, or is killed)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(memory_mb)
    state = setup(settings)
    conn.send(("ready", None))

    def report(message: Any) -> None:
        conn.send(("progress", message))

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(("ok", fn(job, state, report)))
        except MemoryError:
            conn.send(("error", f"MemoryError: past the extractor memory limit of {memory_mb} MB "
                                "(extract.max_memory_mb)"))
        except Exception as exc:  # any failure of the extractor is the job's, never the child's
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:1000]))


def _spawn(setup: Callable[[Any], Any], fn: JobFn, settings: Any, memory_mb: int | None) -> tuple[Any, Any]:
    """A child process started (not yet ready) and the parent's end of its pipe."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, setup, fn, settings, memory_mb), daemon=True)
    proc.start()
    child.close()
    return proc, parent


_SPARES: dict[tuple, list[tuple[Any, Any]]] = {}
_SPARES_LOCK = threading.Lock()


def prestart(setup: Callable[[Any], Any], fn: JobFn, settings: Any, memory_mb: int | None, count: int) -> None:
    """Start `count` children for Sandboxes of these arguments now, so that their imports and setup run while the
    caller does its own start-up (building a pipeline, one core busy); a Sandbox made later with the same
    arguments takes one of them instead of starting its own. `discard_spares` ends those nobody took."""
    started = [_spawn(setup, fn, settings, memory_mb) for _ in range(count)]
    with _SPARES_LOCK:
        _SPARES.setdefault(_key(setup, fn, settings, memory_mb), []).extend(started)


def _key(setup: Callable[[Any], Any], fn: JobFn, settings: Any, memory_mb: int | None) -> tuple:
    """Which Sandboxes a spare child suits: those of the same functions, settings and memory limit."""
    return setup, fn, repr(settings), memory_mb


def _take_spare(key: tuple) -> tuple[Any, Any] | None:
    with _SPARES_LOCK:
        spares = _SPARES.get(key)
        return spares.pop() if spares else None


def discard_spares() -> None:
    """End the children `prestart` started that no Sandbox took."""
    with _SPARES_LOCK:
        left = [spare for spares in _SPARES.values() for spare in spares]
        _SPARES.clear()
    for proc, conn in left:
        try:
            conn.send(None)
        except OSError:
            pass
        proc.join(timeout=2)
        if proc.is_alive():
            proc.kill()
            proc.join()


class Sandbox:
    """One child process running `fn` on jobs, one at a time, each under `timeout_s`. Not thread-safe."""

    def __init__(self, setup: Callable[[Any], Any], fn: JobFn, settings: Any, timeout_s: float,
                 on_progress: Callable[[Any], None] | None = None, memory_mb: int | None = None) -> None:
        self.setup, self.fn, self.settings, self.timeout_s = setup, fn, settings, timeout_s
        self.memory_mb = memory_mb
        self.on_progress = on_progress
        self._proc: Any = None
        self._conn: Any = None
        self._job: Any = None  # the submitted job, until collected
        self._sent: tuple[str, Any] | None = None  # its outcome, where the child died as it was handed it
        self._deadline = 0.0

    def _start(self) -> None:
        """A ready child: one prestarted for these arguments, or a fresh one (also when that one failed)."""
        spare = _take_spare(_key(self.setup, self.fn, self.settings, self.memory_mb))
        if spare is not None:
            if self._ready(*spare):
                return
            self._kill()
        if not self._ready(*_spawn(self.setup, self.fn, self.settings, self.memory_mb)):
            code = self._proc.exitcode
            self._kill()
            raise RuntimeError(f"the extractor child process did not start (exit code {code}); a script that runs "
                               "refinery needs an `if __name__ == '__main__':` guard (children are spawned)")

    def _ready(self, proc: Any, conn: Any) -> bool:
        """Adopt this child; True once it says it is ready."""
        self._proc, self._conn = proc, conn
        try:
            return bool(conn.poll(STARTUP_TIMEOUT_S)) and conn.recv()[0] == "ready"
        except (EOFError, OSError):
            return False

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._proc = None

    def close(self) -> None:
        self._job = self._sent = None
        if self._proc is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
            self._proc = None

    def __call__(self, job: Any) -> tuple[str, Any]:
        """("ok", result) | ("timeout", seconds) | ("error", message). A child that dies is replaced and the job
        tried once more before it is the job's error; a child stopped by SIGINT/SIGTERM raises Interrupted."""
        self.submit(job)
        return self.collect()

    def submit(self, job: Any) -> None:
        """Hand the child `job` and return at once: it works on it while the caller does other work, under the
        deadline from now. `collect` takes the outcome; one job at a time."""
        if self._job is not None:
            raise RuntimeError("Sandbox.submit: the last job was not collected")
        self._job = job
        self._sent = self._send(job)

    def collect(self) -> tuple[str, Any]:
        """The outcome of the submitted job (see __call__)."""
        job, self._job = self._job, None
        status, body = self._sent if self._sent is not None else self._wait()
        if status == "died":
            self._sent = self._send(job)
            status, body = self._sent if self._sent is not None else self._wait()
        self._sent = None
        return ("error", body) if status == "died" else (status, body)

    def _send(self, job: Any) -> tuple[str, Any] | None:
        """Start `job`: None once the child has it, or the outcome where the child died before taking it."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._deadline = time.monotonic() + self.timeout_s
        try:
            self._conn.send(job)
        except (EOFError, OSError) as exc:
            return self._died(exc)
        return None

    def _wait(self) -> tuple[str, Any]:
        try:
            while True:
                # an outcome already in the pipe counts however late the caller comes for it
                if not self._conn.poll(max(self._deadline - time.monotonic(), 0)):
                    self._kill()
                    return "timeout", self.timeout_s
                kind, body = self._conn.recv()
                if kind == "progress":
                    if self.on_progress is not None:
                        self.on_progress(body)
                    continue
                return kind, body
        except (EOFError, OSError) as exc:
            return self._died(exc)

    def _died(self, exc: BaseException) -> tuple[str, Any]:
        proc = self._proc
        if proc is not None:
            proc.join(timeout=1)
        code = proc.exitcode if proc is not None else None
        self._kill()
        if code is not None and -code in STOP_SIGNALS:
            raise Interrupted(f"extractor stopped by signal {-code}") from exc
        hint = f"; its memory limit is {self.memory_mb} MB (extract.max_memory_mb)" if self.memory_mb else ""
        return "died", f"extractor process died (exit code {code}): {type(exc).__name__}{hint}"
