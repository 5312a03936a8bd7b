"""Where refinery reads and writes: local paths, and URLs of object stores and the web, through one layer.

A local path (or `file://`) goes straight to the operating system, with the guarantees of a POSIX disk (write
to a temporary name, sync, rename). Any other URL goes through fsspec: `s3://` (`pip install 'refinery[s3]'`),
`gs://` (`[gcs]`), `az://` and `abfs://` (`[azure]`), and read-only `hf://`, `http(s)://`. An object store has
no rename: an object written whole becomes visible at once when its upload completes, and never half-written,
so `writer` writes objects straight under their final names and aborts the upload on an error.

Credentials come the standard way (environment, profiles, instance metadata) and never pass through here.
Non-secret options per protocol (an endpoint, a region, anonymous access) come from fsspec's environment
variables (`FSSPEC_S3='{"anon": true}'`) or a config's `storage` section (`configure`).
"""
from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import posixpath
import tempfile
from typing import IO, Any, Iterator

from pipelines.config.base import ConfigError

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure",
          "adl": "azure", "hf": "hf"}
READ_ONLY = ("http", "https", "hf")
SECRET_WORDS = ("secret", "password", "token", "credential", "key_id", "access_key", "account_key", "sas")
BLOCK = 8 << 20  # bytes a ranged GET asks for when reading an object in order


class StorageError(ConfigError):
    """A storage problem the user fixes (a missing extra or bucket, denied credentials): one line, exit 2."""


def is_url(path: str) -> bool:
    """True for anything but a local path (`file://` counts as local)."""
    return "://" in path and not path.startswith("file://")


def protocol(path: str) -> str:
    return path.split("://", 1)[0].lower() if is_url(path) else "file"


def local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def normalize(path: str) -> str:
    """`..` and `//` folded away: a URL keeps its scheme and bucket, a local path becomes absolute."""
    if not is_url(path):
        return os.path.normpath(os.path.abspath(local(path)))
    scheme, rest = path.split("://", 1)
    bucket, _, key = rest.partition("/")
    key = posixpath.normpath("/" + key).lstrip("/") if key else ""
    return f"{scheme}://{bucket}" + (f"/{key}" if key else "")


def join(base: str, *parts: str) -> str:
    """`os.path.join` for local paths and URLs alike: an absolute part (a path or a URL) replaces the base."""
    out = base
    for part in parts:
        if is_url(part) or part.startswith("file://"):
            out = part
        elif is_url(out):
            out = out.rstrip("/") + "/" + part.lstrip("/")
        else:
            out = os.path.join(local(out), part)
    return out


def dirname(path: str) -> str:
    if not is_url(path):
        return os.path.dirname(local(path))
    scheme, rest = path.split("://", 1)
    head = posixpath.dirname(rest.rstrip("/"))
    return f"{scheme}://{head or rest}"


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) if is_url(path) else os.path.basename(path)


def relative(path: str, base: str) -> str | None:
    """`path` relative to the folder `base` when it lies inside it, else None."""
    if is_url(path) != is_url(base):
        return None
    if not is_url(path):
        path, base = os.path.abspath(local(path)), os.path.abspath(local(base))
        return os.path.relpath(path, base) if os.path.commonpath([path, base]) == base else None
    base = base.rstrip("/") + "/"
    return path[len(base):] if path.startswith(base) else None


def relpath(path: str, start: str) -> str:
    """`os.path.relpath` for local paths and for URLs of one bucket; a URL elsewhere stays whole."""
    if not is_url(path) and not is_url(start):
        return os.path.relpath(local(path), local(start))
    if is_url(path) and is_url(start):
        (scheme, rest), (scheme2, rest2) = path.split("://", 1), start.split("://", 1)
        if scheme == scheme2 and rest.split("/", 1)[0] == rest2.split("/", 1)[0]:
            return posixpath.relpath("/" + rest, "/" + rest2)
    return path


def inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies below it (local paths through their real locations)."""
    if not is_url(path) and not is_url(folder):
        path, folder = os.path.realpath(local(path)), os.path.realpath(local(folder))
        return os.path.commonpath([path, folder]) == folder
    return path.rstrip("/") == folder.rstrip("/") or relative(path, folder) is not None


# ---- the filesystems behind URLs --------------------------------------------------------------------

_OPTIONS: dict[str, dict[str, Any]] = {}


def check_options(options: dict[str, dict[str, Any]]) -> None:
    """A config's storage options: non-secret settings only (credentials come from the environment)."""
    for proto, opts in options.items():
        for key in _flat_keys(opts):
            if any(word in key.lower() for word in SECRET_WORDS):
                raise ConfigError(f"storage.{proto}.{key}: credentials never go in a config; set them the "
                                  "standard way (environment variables, a profile, instance metadata)")


def _flat_keys(opts: Any, prefix: str = "") -> Iterator[str]:
    for key, value in (opts or {}).items():
        yield prefix + str(key)
        if isinstance(value, dict):
            yield from _flat_keys(value, prefix + str(key) + ".")


def configure(options: dict[str, dict[str, Any]]) -> None:
    """Set non-secret options per protocol for this process and the worker processes it starts (as fsspec's
    `FSSPEC_<PROTOCOL>` environment variables, which fsspec reads in every process)."""
    check_options(options)
    for proto, opts in options.items():
        if not opts:
            continue
        _OPTIONS[proto] = dict(opts)
        os.environ[f"FSSPEC_{proto.upper()}"] = json.dumps(opts, sort_keys=True)
        _filesystem_cache.clear()


def _defaults(proto: str) -> dict[str, Any]:
    """What refinery asks of every store: no stale listings (another worker may have written since), and, on S3,
    retries of throttling and 5xx answers with backoff (botocore's standard mode)."""
    out: dict[str, Any] = {"use_listings_cache": False}
    if proto in ("s3", "s3a"):
        out["config_kwargs"] = {"retries": {"mode": "standard", "max_attempts": 10}}
    return out


_filesystem_cache: dict[str, Any] = {}


def filesystem(path: str) -> Any:
    """The fsspec filesystem of a URL's protocol (one per process), or a StorageError naming the extra to
    install."""
    proto = protocol(path)
    fs = _filesystem_cache.get(proto)
    if fs is not None:
        return fs
    try:
        import fsspec
        from fsspec.config import conf

        opts = {**_defaults(proto), **conf.get(proto, {}), **_OPTIONS.get(proto, {})}
        fs = fsspec.filesystem(proto, skip_instance_cache=True, **opts)  # cached here, by protocol
    except (ImportError, ValueError) as exc:
        extra = EXTRAS.get(proto)
        hint = f"pip install 'refinery[{extra}]'" if extra else "a protocol fsspec knows"
        raise StorageError(f"{path}: cannot open {proto}:// ({_first_line(exc)}); it needs {hint}") from None
    _filesystem_cache[proto] = fs
    return fs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def describe(exc: BaseException) -> str:
    """A storage failure as one line, without request ids or signed URLs."""
    name = type(exc).__name__
    line = _first_line(exc)
    if "NoCredentials" in name or "Unable to locate credentials" in line:
        return "no credentials found (set them in the environment, a profile or instance metadata)"
    if "AccessDenied" in line or "Forbidden" in line or isinstance(exc, PermissionError):
        return f"access denied ({line})"
    if "NoSuchBucket" in line or "bucket does not exist" in line.lower():
        return "the bucket does not exist"
    return f"{name}: {line}"


@contextlib.contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Storage failures in the driver (listing inputs, claiming the output) become one line for the user."""
    try:
        yield
    except StorageError:
        raise
    except (OSError, ValueError) as exc:
        raise StorageError(f"{what}: {describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError and friends are not OSErrors
        if type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "google", "azure", "aiohttp"):
            raise StorageError(f"{what}: {describe(exc)}") from None
        raise


# ---- reading --------------------------------------------------------------------------------------

def open(path: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:  # noqa: A001 - the one open of the project
    """A file for reading; a URL is read in ranged GETs of BLOCK bytes as the reader moves through it (a seek
    starts a new range: no object is fetched whole to read part of it)."""
    if "r" not in mode:
        raise ValueError("storage.open reads; write through storage.writer")
    if not is_url(path):
        return builtins.open(local(path), mode, **kwargs)
    import io

    fs = filesystem(path)
    # readahead: each GET asks for BLOCK bytes from where the reader is; the buffer gives readline(limit)
    fh = io.BufferedReader(fs.open(path, "rb", block_size=BLOCK, cache_type="readahead"), 1 << 16)
    if "b" in mode:
        return fh
    return io.TextIOWrapper(fh, encoding=kwargs.get("encoding", "utf-8"), errors=kwargs.get("errors", "strict"),
                            newline=kwargs.get("newline"))


@contextlib.contextmanager
def arrow_input(path: str) -> Iterator[Any]:
    """What pyarrow reads from: a local path as it is (Arrow's own file I/O); an object as a file whose every
    read is one ranged GET, so Parquet fetches its footer and then only the column chunks it needs (a small
    object that several steps read whole goes through `read_held` instead)."""
    if not is_url(path):
        yield local(path)
        return
    with filesystem(path).open(path, "rb", cache_type="none") as fh:
        yield fh


def read_bytes(path: str) -> bytes:
    if is_url(path):
        return filesystem(path).cat_file(path)  # one GET
    with builtins.open(local(path), "rb") as fh:
        return fh.read()


_NOTED: dict[str, dict[str, Any]] = {}  # size and stamp of objects, as the driver's listing found them


def info(path: str) -> dict[str, Any]:
    """{'size', 'stamp'}: the stamp changes when the file does (mtime locally, the ETag of an object). An
    object listed by `find(note=True)` or `infos` is not asked for again (a crawl has tens of thousands)."""
    if not is_url(path):
        st = os.stat(local(path))
        return {"size": st.st_size, "stamp": f"{st.st_size}:{st.st_mtime_ns}"}
    if path in _NOTED:
        return _NOTED[path]
    return _described(filesystem(path).info(path))


def _described(found: dict[str, Any]) -> dict[str, Any]:
    tag = found.get("ETag") or found.get("etag") or found.get("generation") or found.get("LastModified") or ""
    return {"size": int(found.get("size") or 0), "stamp": f"{found.get('size')}:{str(tag).strip(chr(34))}"}


def infos(paths: list[str], threads: int = 32) -> dict[str, dict[str, Any] | None]:
    """`info` of many objects at once (None where there is none), noted for later `info` calls: a crawl's
    paths list is checked in parallel requests, not one after another."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path: str) -> dict[str, Any] | None:
        try:
            return info(path)
        except FileNotFoundError:
            return None

    with ThreadPoolExecutor(threads) as pool:
        found = dict(zip(paths, pool.map(one, paths)))
    _NOTED.update({p: i for p, i in found.items() if i is not None and is_url(p)})
    return found


def forget() -> None:
    """Drop what listings noted and the objects held (a new run lists and reads them again)."""
    _NOTED.clear()
    _HELD.clear()


_HELD: dict[str, bytes] = {}  # small objects read whole, least recently used first
HELD_BYTES = 8 << 20  # a unit's facts, and the pieces a shard boundary reads twice


def read_held(path: str) -> bytes:
    """The bytes of a small object that several steps read in turn (a unit's staged facts: its ids, then its
    hashes, then its band keys; a piece two shards take rows of), kept in this process up to HELD_BYTES, least
    recently used out first; a local file is read from disk each time (the operating system caches it). Writing
    or removing it through this module drops it."""
    if not is_url(path):
        return read_bytes(path)
    data = _HELD.pop(path, None)
    if data is None:
        data = filesystem(path).cat_file(path)
    _HELD[path] = data
    total = sum(len(v) for v in _HELD.values())
    while total > HELD_BYTES and len(_HELD) > 1:
        total -= len(_HELD.pop(next(iter(_HELD))))
    return data


def getsize(path: str) -> int:
    return os.path.getsize(local(path)) if not is_url(path) else info(path)["size"]


def exists(path: str) -> bool:
    return os.path.exists(local(path)) if not is_url(path) else bool(filesystem(path).exists(path))


def isfile(path: str) -> bool:
    return os.path.isfile(local(path)) if not is_url(path) else bool(filesystem(path).isfile(path))


def isdir(path: str) -> bool:
    """A local folder; under a URL, a prefix that holds at least one object."""
    if not is_url(path):
        return os.path.isdir(local(path))
    return bool(listdir(path))


def listdir(path: str) -> list[str]:
    """Sorted names directly under a folder (or prefix); empty when there is none."""
    if not is_url(path):
        try:
            return sorted(os.listdir(local(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []
    fs = filesystem(path)
    try:
        entries = fs.ls(path.rstrip("/"), detail=False, refresh=True)
    except FileNotFoundError:
        return []
    prefix = _key(path).rstrip("/") + "/"
    return sorted({_key(e)[len(prefix):].split("/", 1)[0] for e in entries if _key(e).startswith(prefix)} - {""})


def find(folder: str, note: bool = False) -> list[str]:
    """Every file below a folder (URLs with their scheme), sorted; `note`: remember each object's size and
    stamp from the listing itself (see `info`)."""
    if not is_url(folder):
        out = []
        for root, _, names in os.walk(local(folder)):
            out += [os.path.join(root, n) for n in names]
        return sorted(out)
    fs = filesystem(folder)
    scheme = protocol(folder)
    try:
        found = fs.find(folder.rstrip("/"), withdirs=False, detail=True)
    except FileNotFoundError:
        return []
    if note:
        _NOTED.update({f"{scheme}://{_key(p)}": _described(entry) for p, entry in found.items()})
    return sorted(f"{scheme}://{_key(p)}" for p in found)


def bucket_exists(path: str) -> bool:
    """Whether the bucket (container) of a URL is there and may be listed."""
    scheme, rest = path.split("://", 1)
    return bool(filesystem(path).exists(f"{scheme}://{rest.split('/', 1)[0]}"))


def _key(path: str) -> str:
    """bucket/key of a URL (fsspec's own form of a path)."""
    return path.split("://", 1)[1] if "://" in path else path


# ---- writing --------------------------------------------------------------------------------------

def makedirs(path: str) -> None:
    """A local folder; nothing under a URL (an object store has no folders)."""
    if not is_url(path):
        os.makedirs(local(path), exist_ok=True)


def _check_writable(path: str) -> None:
    if protocol(path) in READ_ONLY:
        raise StorageError(f"{path}: {protocol(path)}:// is read-only; write to a local folder or a bucket")


@contextlib.contextmanager
def writer(path: str, mode: str = "wb", sync: bool = False) -> Iterator[IO[Any]]:
    """A file that appears at `path` whole when the block ends without an error, and not at all otherwise.

    Locally: a temporary name beside it, synced to disk first when `sync` (a commit that must survive a power
    loss), then renamed. Under a URL: the object's upload completes when the block ends; on an error it is
    aborted, so nothing half-written is ever listed."""
    text = "b" not in mode
    if not is_url(path):
        target = local(path)
        tmp = target + ".tmp"
        try:
            with builtins.open(tmp, mode, **({"encoding": "utf-8"} if text else {})) as fh:
                yield fh
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return
    _check_writable(path)
    _HELD.pop(path, None)
    raw = filesystem(path).open(path, "wb")
    fh: Any = raw
    if text:
        import io

        fh = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    try:
        yield fh
        if text:
            fh.flush()
            fh.detach()
    except BaseException:
        with contextlib.suppress(Exception):
            raw.discard()
        raw.closed = True  # closing would upload what was written: the object is dropped instead
        raise
    raw.close()


def write_bytes(path: str, data: bytes, sync: bool = False) -> None:
    with writer(path, "wb", sync) as fh:
        fh.write(data)


def remove(path: str) -> None:
    """Delete a file or object; one that is not there is not an error."""
    with contextlib.suppress(FileNotFoundError):
        if is_url(path):
            _HELD.pop(path, None)
            filesystem(path).rm_file(path)
        else:
            os.remove(local(path))


def rmtree(path: str) -> None:
    """Delete a folder (every object under a prefix) and all it holds; a missing one is not an error."""
    if not is_url(path):
        import shutil

        shutil.rmtree(local(path), ignore_errors=True)
        return
    files = find(path)
    for name in files:
        _HELD.pop(name, None)
    if files:
        filesystem(path).rm(files)


def copy(src: str, dst: str) -> None:
    """Copy a file: a server-side copy within one store, else through this process, written whole."""
    if is_url(src) and is_url(dst) and protocol(src) == protocol(dst):
        filesystem(src).copy(src, dst)
        return
    with open(src, "rb") as fin, writer(dst, "wb") as fout:
        while True:
            block = fin.read(BLOCK)
            if not block:
                break
            fout.write(block)


def create(path: str, data: bytes) -> bool:
    """Write `path` only if nothing is there (a conditional write on a store, O_EXCL locally): False when
    something already is. Two callers racing: exactly one gets True."""
    if not is_url(path):
        try:
            fd = os.open(local(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    _check_writable(path)
    try:
        filesystem(path).pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    except Exception as exc:  # noqa: BLE001 - each store says "precondition failed" its own way
        if _precondition_failed(exc):
            return False
        raise
    return True


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in ("PreconditionFailed", "pre-conditions you specified", "ConditionalRequestConflict",
                                   " 412"))


def replace_if(path: str, data: bytes, etag: str) -> bool:
    """Overwrite an object only if it still has `etag` (S3's conditional write): False when it changed since."""
    fs = filesystem(path)
    try:
        fs.pipe_file(path, data, IfMatch=etag)
    except Exception as exc:  # noqa: BLE001
        if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
            return False
        raise
    return True


def etag(path: str) -> str | None:
    """The ETag of an object (None when it is not there)."""
    try:
        found = filesystem(path).info(path, refresh=True)
    except FileNotFoundError:
        return None
    tag = found.get("ETag") or found.get("etag")
    return str(tag) if tag else None


# ---- local copies -----------------------------------------------------------------------------------

def cache_folder() -> str:
    """This machine's folder for local copies and memory-mapped caches of what lies in buckets:
    `$REFINERY_CACHE`, else `refinery-cache` in the system's temporary folder."""
    return os.environ.get("REFINERY_CACHE") or os.path.join(tempfile.gettempdir(), "refinery-cache")


def local_copy(path: str) -> str:
    """A local file with the bytes of `path`: the path itself, or (for a URL) a copy in the cache folder,
    fetched once per process and machine (libraries such as fastText open files by name)."""
    if not is_url(path):
        return local(path)
    stamp = info(path)["stamp"]
    name = hashlib.sha256(f"{path}\0{stamp}".encode()).hexdigest()[:24] + "-" + basename(path)
    folder = os.path.join(cache_folder(), "files")
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, name)
    if not os.path.exists(target):
        copy(path, target)
    return target


def sha256(path: str) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()
