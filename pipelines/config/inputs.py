"""Input globs: which files a source's `paths` match (`**` spans folders; links only when asked)."""
from __future__ import annotations

import glob
import os
import re

from pipelines.runtime import storage

_SPECIAL = ("/proc", "/sys", "/dev")


def glob_root(pattern: str) -> str:
    """The folder a glob pattern starts in: its leading components without wildcards."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = os.sep.join(fixed) or os.sep
    return root if len(fixed) < len(parts) else os.path.dirname(root)


def match_files(pattern: str, follow_symlinks: bool) -> list[str]:
    """Regular files matching a glob (`**` spans folders), each real file once.

    Without `follow_symlinks`, a symbolic link (to a file or a folder) is never entered or read. With it, links
    are followed, a folder reached twice (a loop) is walked once, a file reached twice is read once (under the
    first path in sorted order), and nothing under /proc, /sys or /dev is read. A URL's glob lists the objects
    under its fixed prefix once (an object store has no links and no folders to walk).
    """
    if storage.is_url(pattern):
        return _match_objects(pattern)
    pattern = os.path.normpath(os.path.abspath(pattern))
    root = glob_root(pattern)
    if not glob.has_magic(pattern):
        candidates = [pattern]
    else:
        relative = os.path.relpath(pattern, root)
        hidden = relative.startswith(".") or (os.sep + ".") in relative  # as glob: names starting with "." only
        regex = re.compile(glob_regex(relative))                         # when the pattern names them
        candidates = []
        seen_dirs: set[tuple[int, int]] = set()
        for folder, dirs, names in os.walk(root, followlinks=follow_symlinks):
            try:
                st = os.stat(folder)
            except OSError:
                dirs[:] = []
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:
                dirs[:] = []
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            dirs.sort()
            if not hidden:
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                names = [n for n in names if not n.startswith(".")]
            if not follow_symlinks:
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in sorted(names):
                path = os.path.join(folder, name)
                if regex.fullmatch(os.path.relpath(path, root)):
                    candidates.append(path)
    out, real_seen = [], set()
    for path in sorted(candidates):
        if os.path.islink(path) and not follow_symlinks:
            continue
        real = os.path.realpath(path)
        if real in real_seen or real.startswith(_SPECIAL) or not os.path.isfile(real):
            continue
        real_seen.add(real)
        out.append(path)
    return out


def _match_objects(pattern: str) -> list[str]:
    pattern = storage.normalize(pattern)
    if not glob.has_magic(pattern):
        return [pattern] if storage.isfile(pattern) else []
    root = glob_root(pattern)
    relative = pattern[len(root):].lstrip("/")
    hidden = relative.startswith(".") or "/." in relative
    regex = re.compile(glob_regex(relative))
    out = []
    for path in storage.find(root, note=True):
        rel = path[len(root):].lstrip("/")
        if regex.fullmatch(rel) and (hidden or not (rel.startswith(".") or "/." in rel)):
            out.append(path)
    if not out and not storage.bucket_exists(pattern):
        raise FileNotFoundError(f"NoSuchBucket: {pattern}")
    return out


def glob_regex(pattern: str) -> str:
    """A glob relative to its root as a regex over relative paths: `**/` is any number of folders, `*` and `?`
    stay within one name, `[...]` is a character class."""
    out, i, sep = [], 0, re.escape(os.sep)
    while i < len(pattern):
        if pattern.startswith("**" + os.sep, i):
            out.append(f"(?:[^{sep}]*{sep})*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"[^{sep}]*")
            i += 1
        elif pattern[i] == "?":
            out.append(f"[^{sep}]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 2) if pattern[i + 1] == "]" else pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
