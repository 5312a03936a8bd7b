"""Work units: one input file, or one byte range of a large JSONL or WARC file.

A file larger than `extract.split_bytes` is cut into ranges of that size, read by different workers. A record
belongs to the range that holds its first byte: a reader starts at the first record boundary at or after its
range start and reads every record that starts before its range end, the last one to its own end. Records are
located by their byte offset, so ids are the same however a file is cut.

Splittable: uncompressed JSONL (a line end is always a record boundary: JSON escapes newlines in strings), and
gzipped WARC made of one gzip member per record (the standard layout; a member that inflates to a WARC version
line is a record start, and a payload's own bytes never appear verbatim in the file because they are
compressed). A gzipped JSONL file, or a WARC file that is one gzip stream, is one unit: a gzip stream cannot be
entered in the middle. So is an uncompressed WARC file: its payloads are stored verbatim and may quote whole WARC
records (a crawl of a site that serves WARC files), which no forward scan can tell from real ones.
"""
from __future__ import annotations

import hashlib
import re
import threading
import zlib
from collections import OrderedDict
from typing import BinaryIO, NamedTuple

from pipelines.runtime import storage

GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_LINE = re.compile(rb"WARC/1\.[01]\r\n")
BLOCK = 1 << 20


class Unit(NamedTuple):
    source: str
    path: str
    start: int = 0
    end: int | None = None  # None: to the end of the file (an unsplit file)

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None

    def key(self) -> str:
        """A name for the unit that changes when the file changes (size, modification time)."""
        try:
            stamp = storage.info(self.path)["stamp"]  # size and mtime; an object's size and ETag
        except OSError:
            stamp = "missing"
        text = f"{self.source}\0{self.path}\0{stamp}\0{self.start}\0{self.end}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def is_multimember_gzip(path: str, probe: int = 64 << 20) -> bool:
    """True when the file's first gzip member ends before the file does. Looks at no more than `probe` bytes,
    compressed or inflated: a first member larger than that counts as a single stream (read whole)."""
    d = zlib.decompressobj(31)
    read = inflated = 0
    with storage.open(path, "rb") as fh:
        while read < probe and inflated < probe:
            block = fh.read(BLOCK)
            if not block:
                return False
            read += len(block)
            try:
                while block and not d.eof and inflated < probe:
                    inflated += len(d.decompress(block, BLOCK))  # output thrown away, one MiB at a time
                    block = d.unconsumed_tail
            except zlib.error:
                return False
            if d.eof:
                return bool(d.unused_data) or bool(fh.read(1))
    return False


def splittable(fmt: str, path: str) -> bool:
    if fmt == "jsonl":
        return not path.endswith(".gz")
    if fmt == "warc":
        return path.endswith(".gz") and is_multimember_gzip(path)
    return False


def plan_units(files: list[tuple[str, str]], formats: dict[str, str], split_bytes: int) -> list[Unit]:
    """Every input file as one unit, or as ranges of `split_bytes` when it is larger and splittable."""
    units: list[Unit] = []
    for source, path in files:
        try:
            size = storage.getsize(path)
        except OSError:
            size = 0  # the reader reports the file as read:io_error
        if size <= split_bytes or not splittable(formats[source], path):
            units.append(Unit(source, path))
            continue
        for start in range(0, size, split_bytes):
            units.append(Unit(source, path, start, min(start + split_bytes, size)))
    return units


# ---- finding the first record boundary at or after a byte offset ---------------------------------------

def line_start(fh: BinaryIO, start: int) -> int:
    """The offset of the first line that starts at or after `start`."""
    if start == 0:
        return 0
    fh.seek(start - 1)
    if fh.read(1) == b"\n":
        return start
    skip_line(fh)  # the rest of a line that began in the previous range
    return fh.tell()


def skip_line(fh: BinaryIO) -> int:
    """Read past the next line end in bounded pieces, never holding the line; returns the bytes skipped."""
    skipped = 0
    while True:
        piece = fh.readline(BLOCK)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped


def _inflate_member(fh: BinaryIO, offset: int, budget: int, file: str | None = None) -> tuple[str, int, bytes]:
    """Inflate the gzip member at `offset`: (how, used, head). `how` is "end" (it ends after `used` bytes),
    "eof" (the file ends inside it), "bad" (it does not inflate) or "budget" (still going past `budget` bytes);
    `head` is its first inflated bytes.

    With `file` (the file's path and stamp), a member this process inflated before is not inflated again: the
    check at a range's end and the one at the next range's start ask about the same members."""
    found = _MEMBERS.get((file, offset)) if file is not None else None
    if found is None:
        found = _inflate(fh, offset, budget)
        if file is not None and found[0] != "budget":  # a whole answer holds for any budget
            _MEMBERS.put((file, offset), found)
    how, used, _ = found
    # inflating under this budget would have stopped once past it, whatever followed
    return ("budget", used, found[2]) if how != "budget" and used > budget else found


def _inflate(fh: BinaryIO, offset: int, budget: int) -> tuple[str, int, bytes]:
    fh.seek(offset)
    d = zlib.decompressobj(31)
    head = b""
    used = 0
    try:
        while not d.eof:
            block = fh.read(BLOCK)
            if not block:
                return "eof", used, head
            out = d.decompress(block, 1 << 16)
            while d.unconsumed_tail and not d.eof:
                d.decompress(d.unconsumed_tail, 1 << 16)
            if len(head) < 16:
                head += out[:16]
            used += len(block) - len(d.unused_data)
            if used > budget:
                return "budget", used, head
    except zlib.error:
        return "bad", used, head
    return "end", used, head


class _Known:
    """The last few thousand members inflated by this process, by (file, offset); shared by its threads."""

    def __init__(self, held: int) -> None:
        self.held, self.found, self.lock = held, OrderedDict(), threading.Lock()

    def get(self, key: tuple[str, int]) -> tuple[str, int, bytes] | None:
        with self.lock:
            found = self.found.get(key)
            if found is not None:
                self.found.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], found: tuple[str, int, bytes]) -> None:
        with self.lock:
            self.found[key] = found
            while len(self.found) > self.held:
                self.found.popitem(last=False)


_MEMBERS = _Known(4096)


def _member_end(fh: BinaryIO, offset: int, budget: int, file: str | None = None) -> int | None:
    """Where the gzip member at `offset` ends, if one starts there, inflates and holds a WARC header (a member
    the file ends inside runs to the end of the file: a reader from its start reads everything up to there)."""
    how, used, head = _inflate_member(fh, offset, budget, file)
    return offset + used if how in ("end", "eof") and head.startswith(b"WARC/1.") else None


def _inside_previous(fh: BinaryIO, offset: int, reach: int = 4 << 20, depth: int = 8,
                     file: str | None = None) -> bool:
    """The nearest member before `offset` that inflates runs past it: `offset` lies inside that member (its
    payload stored verbatim), so no record starts there. A nearest member ending exactly at `offset` passes the
    question on to itself (members nested in a stored payload end where the next one starts, too)."""
    pos = offset
    while pos > 0 and offset - pos < reach:
        low = max(0, pos - BLOCK)
        fh.seek(low)
        block = fh.read(pos - low + len(GZIP_MAGIC) - 1)
        i = block.rfind(GZIP_MAGIC, 0, pos - low + len(GZIP_MAGIC) - 1)
        while i >= 0:
            if low + i < offset:
                end = _member_end(fh, low + i, reach, file)
                if end is not None:
                    if end > offset:
                        return True
                    nested = end == offset and depth > 1
                    return nested and _inside_previous(fh, low + i, reach, depth - 1, file)
            i = block.rfind(GZIP_MAGIC, 0, i + len(GZIP_MAGIC) - 1)
        pos = low
    return False


def gzip_record_at(fh: BinaryIO, offset: int, chain: int = 8, budget: int = 16 << 20,
                   file: str | None = None) -> bool:
    """A gzip member starts at `offset`, holds a WARC record header, and is followed by another gzip member or
    the end of the file; so are the next few members (`chain`, within `budget` compressed bytes).

    The chain is what tells a real boundary from a phantom: a WARC.gz stored as the payload of a record can sit
    verbatim inside the outer member (deflate stores incompressible bytes as they are), and its members look
    like records; but the bytes after its last member are the rest of the outer record, not a gzip member.
    A member that fails to inflate further down the chain is damage, reported by the reader, not a phantom. A
    phantom whose chain happens to end with the file is caught the other way: the member before it runs past it.
    `file` names the file's bytes (path and stamp) for the members this process inflated before (_inflate_member)."""
    if _inside_previous(fh, offset, file=file):
        return False
    pos = offset
    for depth in range(chain):
        how, used, head = _inflate_member(fh, pos, budget, file)
        if how == "eof":  # the file ends inside this member: a damaged last record, if it is one
            return depth > 0 or head.startswith(b"WARC/1.")
        if how == "budget":
            return True
        if how == "bad" or not head.startswith(b"WARC/1."):
            return depth > 0
        pos += used
        fh.seek(pos)
        after = fh.read(len(GZIP_MAGIC))
        if not after:
            return True  # the end of the file
        if after != GZIP_MAGIC:
            return False  # bytes after a member that are no member: inside another record
        budget -= used
    return True


def _plain_warc_at(fh: BinaryIO, offset: int) -> bool:
    """A WARC record starts at `offset`: a version line and headers whose Content-Length leads to the
    record's closing blank lines, then to the end of the file or to another version line. Good enough to find
    the next record after a damaged one; not to split a file (see the module's docstring)."""
    fh.seek(offset)
    head = fh.read(64 << 10)
    if not _WARC_LINE.match(head):
        return False
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head[:end], re.I)
    if not m:
        return False
    after = offset + end + 4 + int(m.group(1))
    fh.seek(after)
    tail = fh.read(4 + 10)
    return tail[:4] == b"\r\n\r\n" and (len(tail) == 4 or tail[4:].startswith(b"WARC/1."))


def warc_start(fh: BinaryIO, start: int, end: float, gzipped: bool, file: str | None = None) -> int | None:
    """The offset of the first WARC record at or after `start` and before `end`; None when there is none."""
    if start == 0:
        return 0
    pattern = GZIP_MAGIC if gzipped else b"WARC/1."
    pos = start
    while pos < end:
        fh.seek(pos)
        block = fh.read(BLOCK + len(pattern))
        if not block:
            return None
        i = block.find(pattern)
        while i >= 0 and pos + i < end:
            candidate = pos + i
            if gzip_record_at(fh, candidate, file=file) if gzipped else _plain_warc_at(fh, candidate):
                return candidate
            i = block.find(pattern, i + 1)
        pos += BLOCK
    return None
