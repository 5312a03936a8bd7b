"""The curate config: YAML, validated on load, with errors that name the bad key.

Every relative path is resolved against the config file's folder. `CurateConfig.hash` is a hash of the
normalised config (not of the file's bytes), written into the manifest.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

FORMATS = ("html", "warc", "jsonl", "parquet", "text", "pdf")
OCR_MODES = ("auto", "always", "never")


class ConfigError(ValueError):
    """A bad config: the message starts with the dotted key at fault."""


@dataclass(frozen=True)
class Source:
    name: str
    format: str
    paths: tuple[str, ...]
    text_field: str = "text"
    url_field: str = "url"
    license: str | None = None  # an SPDX id or a free label; a record's own `license` field wins
    attribution: str | None = None
    consent: str | None = None  # e.g. explicit, public-web, unknown; a record's own `consent` field wins
    follow_symlinks: bool = False  # off: symbolic links under the globs are skipped (and counted)


@dataclass(frozen=True)
class HtmlSettings:
    metadata: bool = True  # title, author, date...: about a third of trafilatura's time per page
    include_comments: bool = False
    include_tables: bool = True
    favor_precision: bool = False
    favor_recall: bool = False
    fast: bool = False
    # Take the page's main region (pipelines/page_region.py) when trafilatura keeps less than this share of its
    # length, by the kind of page it declares (Open Graph / schema.org). 0 turns the region off for that kind.
    region_ratio_article: float = 0.1
    region_ratio_other: float = 0.6
    region_ratio_unknown: float = 0.7


@dataclass(frozen=True)
class PdfSettings:
    ocr: str = "auto"  # auto: pages without a usable text layer | always | never
    ocr_engine: str = "tesseract"
    ocr_languages: tuple[str, ...] = ("eng",)
    dpi: int = 300
    max_pages: int = 2_000
    max_bytes: int = 200_000_000
    timeout_s: float = 900.0
    min_layer_chars: int = 50  # fewer characters on a page that holds images: OCR it
    max_garbage_ratio: float = 0.3  # more replacement/private-use/control characters than this: OCR it
    fix_rtl: bool = True  # PDF text layers hold right-to-left script in visual order; restore reading order


@dataclass(frozen=True)
class ExtractSettings:
    timeout_s: float = 20.0
    max_doc_bytes: int = 20_000_000
    max_decompressed_bytes: int = 2_000_000_000
    binary_ratio: float = 0.02
    split_bytes: int = 64_000_000  # a larger JSONL or WARC.gz file is read in ranges of this size by several workers
    max_memory_mb: int = 2048  # address-space cap of each extractor child process (trafilatura, PDFium + OCR)
    html: HtmlSettings = field(default_factory=HtmlSettings)
    pdf: PdfSettings = field(default_factory=PdfSettings)


@dataclass(frozen=True)
class LanguageSettings:
    engine: str = "fasttext"  # fasttext (lid.176) | py3langid
    keep: tuple[str, ...] = ()  # ISO 639-1 codes to keep; empty keeps every language
    min_score: float = 0.0


@dataclass(frozen=True)
class FilterSettings:
    """Language ID and the heuristic rules of pipelines/rules.py.

    `rules` maps a rule name to a threshold (or false to switch it off) for every source; `sources` maps a
    source name to such a mapping for that source alone. `c4_line_filter: true` turns on C4's line filter.
    """

    enabled: bool = True
    language: LanguageSettings = field(default_factory=LanguageSettings)
    rules: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    def thresholds(self, source: str) -> dict[str, Any]:
        """Enabled rules and their thresholds for one source (c4_line_filter maps to True when on)."""
        from .rules import C4_LINE_FILTER, RULES

        out: dict[str, Any] = {r.name: r.default for r in RULES}
        for overrides in (self.rules, self.sources.get(source, {})):
            for name, value in overrides.items():
                if value is False:
                    out.pop(name, None)
                elif value is True:
                    if name == C4_LINE_FILTER:
                        out[name] = True
                    else:
                        from .rules import RULES_BY_NAME

                        out[name] = RULES_BY_NAME[name].default
                else:
                    out[name] = value
        return out


@dataclass(frozen=True)
class OptoutSettings:
    enabled: bool = True
    domains: tuple[str, ...] = ()  # files of blocked domains, one per line (a domain blocks its subdomains)
    urls: tuple[str, ...] = ()  # files of blocked URL patterns, one per line (shell-style: *, ?)


@dataclass(frozen=True)
class PiiSettings:
    enabled: bool = True
    email: bool = True
    ip: bool = True
    phone: bool = True


@dataclass(frozen=True)
class DecontamSettings:
    enabled: bool = False
    paths: tuple[str, ...] = ()  # eval files (JSONL with text or context/gold, or plain text), relative to the config
    ngram: int = 13
    min_words: int = 8  # eval items shorter than this are not indexed


@dataclass(frozen=True)
class MinHashSettings:
    enabled: bool = True
    ngram: int = 5  # word n-gram shingles over normalised text
    bands: int = 14
    rows: int = 8  # 14 x 8 = 112 hash functions: a pair at Jaccard 0.8 is a candidate with p = 0.92
    threshold: float = 0.8  # a candidate pair is a duplicate when its exact shingle Jaccard reaches this
    seed: int = 42
    max_bucket: int = 64  # larger LSH buckets give O(size) pairs instead of all pairs
    cc_rounds: int = 4  # large-star/small-star rounds before the unsettled rest is resolved together


@dataclass(frozen=True)
class DedupSettings:
    enabled: bool = True
    exact: bool = True
    url: bool = True
    url_keep: str = "newest"  # newest | best
    quality_score: str | None = None  # the score that picks survivors; default: the highest quality_* score
    minhash: MinHashSettings = field(default_factory=MinHashSettings)


@dataclass(frozen=True)
class ClassifierSettings:
    """fastText models applied in curate. `models`: quality classifiers, each {name, path, label, and threshold or
    keep_fraction, optional sources}; `domain`: {path, min_score} for the `domain` column."""

    enabled: bool = False
    models: tuple = ()
    domain: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WriteSettings:
    shard_bytes: int = 256_000_000
    row_group_rows: int = 5_000
    compression: str = "zstd"
    compression_level: int = 3


@dataclass(frozen=True)
class ResumeSettings:
    """Checkpoints of finished documents under OUTPUT/.work/, so a rerun after a crash skips them."""

    enabled: bool = True
    every_docs: int = 500  # a worker writes a checkpoint after this many documents...
    every_s: float = 30.0  # ...or after this many seconds, whichever comes first


@dataclass(frozen=True)
class CurateConfig:
    base_dir: str
    sources: tuple[Source, ...]
    output: str
    extract: ExtractSettings
    filters: FilterSettings
    pii: PiiSettings
    optout: OptoutSettings
    decontam: DecontamSettings
    dedup: DedupSettings
    classifiers: ClassifierSettings
    write: WriteSettings
    resume: ResumeSettings = field(default_factory=ResumeSettings)

    @property
    def hash(self) -> str:
        body = asdict(self)
        body.pop("base_dir")
        body.pop("resume")  # how often checkpoints are written changes no output
        body["output"] = os.path.relpath(self.output, self.base_dir)
        text = json.dumps(body, sort_keys=True).replace(self.base_dir + os.sep, "")  # model and eval paths
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def source_files(self, source: Source) -> list[str]:
        """Absolute, sorted, de-duplicated file paths of a source. A glob that matches nothing is an error."""
        files: set[str] = set()
        for i, pattern in enumerate(source.paths):
            full = pattern if os.path.isabs(pattern) else os.path.join(self.base_dir, pattern)
            matched = match_files(full, source.follow_symlinks)
            if not matched:
                raise ConfigError(
                    f"sources[{source.name}].paths[{i}]: {pattern!r} matches no file (looked for {full}"
                    + ("; symbolic links are skipped: set follow_symlinks: true to read them)"
                       if not source.follow_symlinks and glob.glob(full, recursive=False) else ")")
                )
            files.update(matched)
        return sorted(files)

    def uri(self, path: str) -> str:
        """The `source_uri` of a file: its path relative to the config folder, so ids survive a move."""
        rel = os.path.relpath(path, self.base_dir).replace(os.sep, "/")
        # a file name that is not UTF-8 comes back from the OS with lone surrogates: spell its bytes out
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# ---- input globs ------------------------------------------------------------------------------------

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
    first path in sorted order), and nothing under /proc, /sys or /dev is read.
    """
    pattern = os.path.normpath(os.path.abspath(pattern))
    root = glob_root(pattern)
    if not glob.has_magic(pattern):
        candidates = [pattern]
    else:
        relative = os.path.relpath(pattern, root)
        hidden = relative.startswith(".") or (os.sep + ".") in relative  # as glob: names starting with "." only
        regex = re.compile(_glob_regex(relative))                         # when the pattern names them
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


def _glob_regex(pattern: str) -> str:
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


# ---- validation ---------------------------------------------------------------------------------

def _check_keys(section: Any, where: str, allowed: set[str]) -> dict:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(section).__name__}")
    for key in section:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (expected one of: {', '.join(sorted(allowed))})")
    return section


def _typed(value: Any, where: str, kind: type, *, minimum: float | None = None, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e9 as a string
        try:
            value, ok = float(value), True
        except ValueError:
            pass
    if not ok:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: expected a value >= {minimum}, got {value!r}")
    return value


def _dataclass_section(cls: type, raw: Any, where: str, nested: dict[str, type] | None = None) -> Any:
    nested = nested or {}
    fields = cls.__dataclass_fields__
    section = _check_keys(raw, where, set(fields))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in section:
            continue
        value = section[name]
        key = f"{where}.{name}"
        if name in nested:
            values[name] = _dataclass_section(nested[name], value, key)
            continue
        annotation = str(f.type)
        if annotation.startswith("tuple"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
            values[name] = tuple(value)
        elif annotation.startswith("bool"):
            values[name] = _typed(value, key, bool)
        elif annotation.startswith("int"):
            values[name] = _typed(value, key, int, minimum=0, nullable="None" in annotation)
        elif annotation.startswith("float"):
            values[name] = _typed(value, key, float, minimum=0.0)
        elif annotation.startswith("str"):
            values[name] = _typed(value, key, str, nullable="None" in annotation)
        else:  # pragma: no cover - a field type this validator does not know is a programming error
            raise TypeError(f"unsupported config field type {annotation} for {key}")
    return cls(**values)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _sources(raw: Any) -> tuple[Source, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("sources: expected a non-empty list of sources")
    out: list[Source] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"sources[{i}]"
        item = _check_keys(item, where, {"name", "format", "paths", "text_field", "url_field", "license",
                                         "attribution", "consent", "follow_symlinks"})
        for key in ("name", "format", "paths"):
            if key not in item:
                raise ConfigError(f"{where}.{key}: required key is missing")
        name = _typed(item["name"], f"{where}.name", str)
        if not _NAME.match(name):
            raise ConfigError(f"{where}.name: expected letters, digits, '_', '-' or '.', got {name!r}")
        if name in seen:
            raise ConfigError(f"{where}.name: source {name!r} is named twice")
        seen.add(name)
        fmt = item["format"]
        if fmt not in FORMATS:
            raise ConfigError(f"{where}.format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
        paths = item["paths"]
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{where}.paths: expected a non-empty list of glob strings, got {paths!r}")
        out.append(
            Source(
                name=name,
                format=fmt,
                paths=tuple(paths),
                text_field=_typed(item.get("text_field", "text"), f"{where}.text_field", str),
                url_field=_typed(item.get("url_field", "url"), f"{where}.url_field", str),
                license=_typed(item.get("license"), f"{where}.license", str, nullable=True),
                attribution=_typed(item.get("attribution"), f"{where}.attribution", str, nullable=True),
                consent=_typed(item.get("consent"), f"{where}.consent", str, nullable=True),
                follow_symlinks=_typed(item.get("follow_symlinks", False), f"{where}.follow_symlinks", bool),
            )
        )
    return tuple(out)


def _rule_map(raw: Any, where: str) -> dict:
    from .rules import C4_LINE_FILTER, RULES_BY_NAME

    section = _check_keys(raw, where, set(RULES_BY_NAME) | {C4_LINE_FILTER})
    out = {}
    for name, value in section.items():
        if isinstance(value, bool):
            out[name] = value
        elif name == C4_LINE_FILTER:
            raise ConfigError(f"{where}.{name}: expected true or false, got {value!r}")
        else:
            out[name] = _typed(value, f"{where}.{name}", float)
    return out


def _filters(raw: Any) -> FilterSettings:
    section = _check_keys(raw, "filters", {"enabled", "language", "rules", "sources"})
    lang = _dataclass_section(LanguageSettings, section.get("language"), "filters.language")
    if lang.engine not in ("fasttext", "py3langid"):
        raise ConfigError(f"filters.language.engine: expected fasttext or py3langid, got {lang.engine!r}")
    sources = _check_keys(section.get("sources"), "filters.sources", set(section.get("sources") or {}))
    return FilterSettings(
        enabled=_typed(section.get("enabled", True), "filters.enabled", bool),
        language=lang,
        rules=_rule_map(section.get("rules"), "filters.rules"),
        sources={name: _rule_map(v, f"filters.sources.{name}") for name, v in sources.items()},
    )


def _optout(raw: Any, base_dir: str) -> OptoutSettings:
    o = _dataclass_section(OptoutSettings, raw, "optout")
    resolved = {}
    for key in ("domains", "urls"):
        files = []
        for i, p in enumerate(getattr(o, key)):
            full = p if os.path.isabs(p) else os.path.join(os.path.abspath(base_dir), p)
            if not os.path.isfile(full):
                raise ConfigError(f"optout.{key}[{i}]: file not found: {p}")
            files.append(full)
        resolved[key] = tuple(files)
    return OptoutSettings(o.enabled, resolved["domains"], resolved["urls"])


def _decontam(raw: Any, base_dir: str) -> DecontamSettings:
    d = _dataclass_section(DecontamSettings, raw, "decontam")
    paths = []
    for i, p in enumerate(d.paths):
        full = p if os.path.isabs(p) else os.path.join(os.path.abspath(base_dir), p)
        if not os.path.isfile(full):
            raise ConfigError(f"decontam.paths[{i}]: file not found: {p}")
        paths.append(full)
    if d.enabled and not paths:
        raise ConfigError("decontam.paths: expected at least one eval file when decontam is enabled")
    return DecontamSettings(d.enabled, tuple(paths), d.ngram, d.min_words)


def _classifiers(raw: Any, base_dir: str) -> ClassifierSettings:
    section = _check_keys(raw, "classifiers", {"enabled", "models", "domain"})
    models = section.get("models") or []
    if not isinstance(models, list):
        raise ConfigError("classifiers.models: expected a list of models")
    out, names = [], set()
    for i, m in enumerate(models):
        where = f"classifiers.models[{i}]"
        m = _check_keys(m, where, {"name", "path", "label", "threshold", "keep_fraction", "sources"})
        for key in ("name", "path", "label"):
            if key not in m:
                raise ConfigError(f"{where}.{key}: required key is missing")
        name = _typed(m["name"], f"{where}.name", str)
        if not _NAME.match(name) or name in names:
            raise ConfigError(f"{where}.name: expected a unique name, got {name!r}")
        names.add(name)
        path = m["path"] if os.path.isabs(m["path"]) else os.path.join(os.path.abspath(base_dir), m["path"])
        if not os.path.isfile(path):
            raise ConfigError(f"{where}.path: model file not found: {m['path']} (train it with `refinery classifier train`)")
        if ("threshold" in m) == ("keep_fraction" in m):
            raise ConfigError(f"{where}: expected exactly one of threshold, keep_fraction")
        entry = {"name": name, "path": path, "label": _typed(m["label"], f"{where}.label", str),
                 "sources": tuple(m.get("sources") or ())}
        if "threshold" in m:
            entry["threshold"] = _typed(m["threshold"], f"{where}.threshold", float, minimum=0.0)
        else:
            kf = _typed(m["keep_fraction"], f"{where}.keep_fraction", float, minimum=0.0)
            if not 0 < kf <= 1:
                raise ConfigError(f"{where}.keep_fraction: expected a value in (0, 1], got {kf}")
            entry["keep_fraction"] = kf
        out.append(entry)
    domain = _check_keys(section.get("domain"), "classifiers.domain", {"path", "min_score"})
    if domain:
        if "path" not in domain:
            raise ConfigError("classifiers.domain.path: required key is missing")
        p = domain["path"] if os.path.isabs(domain["path"]) else os.path.join(os.path.abspath(base_dir), domain["path"])
        if not os.path.isfile(p):
            raise ConfigError(f"classifiers.domain.path: model file not found: {domain['path']}")
        domain = {"path": p, "min_score": _typed(domain.get("min_score", 0.0), "classifiers.domain.min_score", float)}
    return ClassifierSettings(enabled=_typed(section.get("enabled", bool(out or domain)), "classifiers.enabled", bool),
                              models=tuple(out), domain=dict(domain))


TOP_KEYS = {"sources", "output", "extract", "optout", "filters", "pii", "decontam", "dedup", "classifiers", "write",
            "resume"}


def parse_config(raw: Any, base_dir: str) -> CurateConfig:
    """Validate a loaded YAML mapping. `base_dir` anchors relative paths."""
    raw = _check_keys(raw, "config", TOP_KEYS)
    if "sources" not in raw:
        raise ConfigError("sources: required key is missing")
    if "output" not in raw:
        raise ConfigError("output: required key is missing")
    output = _typed(raw["output"], "output", str)
    base_dir = os.path.abspath(base_dir)
    cfg = CurateConfig(
        base_dir=base_dir,
        sources=_sources(raw["sources"]),
        output=os.path.normpath(os.path.join(base_dir, output)),
        extract=_dataclass_section(ExtractSettings, raw.get("extract"), "extract",
                                   {"html": HtmlSettings, "pdf": PdfSettings}),
        filters=_filters(raw.get("filters")),
        pii=_dataclass_section(PiiSettings, raw.get("pii"), "pii"),
        optout=_optout(raw.get("optout"), base_dir),
        decontam=_decontam(raw.get("decontam"), base_dir),
        dedup=_dataclass_section(DedupSettings, raw.get("dedup"), "dedup", {"minhash": MinHashSettings}),
        classifiers=_classifiers(raw.get("classifiers"), base_dir),
        write=_dataclass_section(WriteSettings, raw.get("write"), "write"),
        resume=_dataclass_section(ResumeSettings, raw.get("resume"), "resume"),
    )
    if cfg.write.compression not in ("zstd", "snappy", "gzip", "none"):
        raise ConfigError(f"write.compression: expected zstd, snappy, gzip or none, got {cfg.write.compression!r}")
    if cfg.write.row_group_rows < 1:
        raise ConfigError("write.row_group_rows: expected a value >= 1")
    if cfg.write.shard_bytes < 100_000:
        raise ConfigError(f"write.shard_bytes: expected at least 100000 (100 KB), got {cfg.write.shard_bytes}")
    _check_output(cfg)
    if cfg.extract.max_memory_mb and cfg.extract.max_memory_mb < 256:
        raise ConfigError(f"extract.max_memory_mb: expected 0 (no cap) or at least 256, got {cfg.extract.max_memory_mb}")
    if cfg.extract.split_bytes < 4096:
        raise ConfigError(f"extract.split_bytes: expected a value >= 4096, got {cfg.extract.split_bytes}")
    if cfg.resume.every_docs < 1:
        raise ConfigError("resume.every_docs: expected a value >= 1")
    if cfg.extract.timeout_s <= 0:
        raise ConfigError("extract.timeout_s: expected a value > 0")
    for kind in ("article", "other", "unknown"):
        ratio = getattr(cfg.extract.html, f"region_ratio_{kind}")
        if not 0.0 <= ratio <= 10.0:
            raise ConfigError(f"extract.html.region_ratio_{kind}: expected 0 (off) to 10, got {ratio}")
    dedup = cfg.dedup
    if dedup.url_keep not in ("newest", "best"):
        raise ConfigError(f"dedup.url_keep: expected newest or best, got {dedup.url_keep!r}")
    mh = dedup.minhash
    for key in ("ngram", "bands", "rows", "max_bucket"):
        if getattr(mh, key) < 1:
            raise ConfigError(f"dedup.minhash.{key}: expected a value >= 1")
    if mh.bands > 255:
        raise ConfigError(f"dedup.minhash.bands: expected at most 255, got {mh.bands}")
    if mh.max_bucket < 2:
        raise ConfigError("dedup.minhash.max_bucket: expected a value >= 2")
    if not 0.0 < mh.threshold <= 1.0:
        raise ConfigError(f"dedup.minhash.threshold: expected a value in (0, 1], got {mh.threshold}")
    pdf = cfg.extract.pdf
    if pdf.ocr not in OCR_MODES:
        raise ConfigError(f"extract.pdf.ocr: expected one of {', '.join(OCR_MODES)}, got {pdf.ocr!r}")
    from .ocr import ENGINES

    if pdf.ocr_engine not in ENGINES:
        raise ConfigError(f"extract.pdf.ocr_engine: expected one of {', '.join(ENGINES)}, got {pdf.ocr_engine!r}")
    if not pdf.ocr_languages:
        raise ConfigError("extract.pdf.ocr_languages: expected at least one language (e.g. [eng])")
    if pdf.dpi < 50 or pdf.dpi > 1200:
        raise ConfigError(f"extract.pdf.dpi: expected 50 to 1200, got {pdf.dpi}")
    if pdf.timeout_s <= 0:
        raise ConfigError("extract.pdf.timeout_s: expected a value > 0")
    return cfg


# What a curate run writes in its output folder (the data card's files included).
OUTPUT_NAMES = ("stats.json", "manifest.json", "data_card.json", "data_card.md", "funnel.png", "licenses.png",
                "kept/part-00000-of-00001.parquet", "rejected/part-00000-of-00001.parquet", ".refinery")


def _check_output(cfg: CurateConfig) -> None:
    """The output folder must be a folder, and no input glob may match what refinery writes in it (a rerun
    would read its own output). Input files inside it are refused when the inputs are listed."""
    if os.path.exists(cfg.output) and not os.path.isdir(cfg.output):
        raise ConfigError(f"output: {cfg.output} exists and is not a folder")
    for source in cfg.sources:
        for i, pattern in enumerate(source.paths):
            full = os.path.normpath(pattern if os.path.isabs(pattern) else os.path.join(cfg.base_dir, pattern))
            root = glob_root(full)
            regex = re.compile(_glob_regex(os.path.relpath(full, root)))
            for name in OUTPUT_NAMES:
                written = os.path.join(cfg.output, name)
                if os.path.commonpath([written, root]) == root and regex.fullmatch(os.path.relpath(written, root)):
                    raise ConfigError(f"sources[{source.name}].paths[{i}]: {pattern!r} matches {written}, which "
                                      "refinery writes: choose an output folder outside the inputs")


def check_inputs_outside_output(cfg: CurateConfig, files: list[str]) -> None:
    """Publishing replaces OUTPUT/kept and OUTPUT/rejected: no input may live in the output folder."""
    out = os.path.realpath(cfg.output)
    for path in files:
        if os.path.commonpath([out, os.path.realpath(path)]) == out:
            raise ConfigError(f"output: {cfg.output} holds the input file {path}: refinery replaces folders in its "
                              "output; choose an output folder outside the inputs")


def load_config(path: str) -> CurateConfig:
    """Read and validate a curate config file."""
    return parse_config(*load_yaml(path))


# ---- the swarm job: proxies trained on mixtures of a curated pool, scored on the target eval suite -----

@dataclass(frozen=True)
class TokenizerSettings:
    kind: str = "bytes"  # bytes | bpe (trained offline on the pool's training split)
    vocab_size: int = 4096


@dataclass(frozen=True)
class ProxySettings:
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    context: int = 256


@dataclass(frozen=True)
class SwarmConfig:
    base_dir: str
    pool: str
    output: str
    domain_column: str
    domains: tuple[str, ...]
    heldout_fraction: float
    tokenizer: TokenizerSettings
    proxy: ProxySettings
    train: Any  # proxies.train.TrainSettings
    eval_sets: tuple[dict, ...]
    eval_max_bytes: int
    mixtures: tuple[Any, ...]  # "natural" | "uniform" | "one-hot" | {domain: weight}
    seeds: tuple[int, ...]
    mix: Any = None  # MixSettings


SWARM_KEYS = {"pool", "output", "domain_column", "domains", "heldout_fraction", "tokenizer", "proxy", "train",
              "eval", "mixtures", "seeds", "mix"}


@dataclass(frozen=True)
class MixSettings:
    budget_tokens: float = 1e9  # the training budget the mixture is for: epoch caps are counted against it
    max_epochs: float = 4.0  # no domain repeated more often than this at the budget
    swarm_size: int = 0  # sampled mixtures; 0: 3 x (domains + 1)
    noise_mixtures: int = 2  # this many sampled mixtures are also trained with noise_seeds more seeds
    noise_seeds: int = 2
    exponent: float = 0.5  # the prior is flattened by this exponent before the Dirichlet is centred on it
    min_concentration: float = 0.1
    max_concentration: float = 5.0
    min_weight: float = 0.01  # smaller sampled weights are zeroed
    kl_weight: float = 0.02  # the optimiser's penalty on KL(mixture || prior), in objective units
    search_samples: int = 20_000  # mixtures scored by the fitted model in the cross-check search
    confirm_runs: int = 2  # seeds per confirmation mixture (chosen, prior, uniform)
    seed: int = 0


NAMED_MIXTURES = ("natural", "uniform", "one-hot")


def _eval_sets(raw: Any) -> tuple[tuple[dict, ...], int]:
    section = _check_keys(raw, "eval", {"sets", "max_bytes"})
    max_bytes = _typed(section.get("max_bytes", 100_000), "eval.max_bytes", int, minimum=1000)
    sets = section.get("sets")
    if not isinstance(sets, list) or not sets:
        raise ConfigError("eval.sets: expected a non-empty list of eval sets")
    seen = set()
    out = []
    for i, s in enumerate(sets):
        where = f"eval.sets[{i}]"
        s = _check_keys(s, where, {"name", "weight", "domain", "path", "tasks"})
        name = _typed(s.get("name"), f"{where}.name", str)
        if not _NAME.match(name) or name in seen:
            raise ConfigError(f"{where}.name: expected a unique name of letters, digits, '_', '-', got {name!r}")
        seen.add(name)
        kinds = [k for k in ("domain", "path", "tasks") if k in s]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: expected exactly one of domain, path, tasks (got {kinds or 'none'})")
        _typed(s[kinds[0]], f"{where}.{kinds[0]}", str)
        _typed(s.get("weight", 1.0), f"{where}.weight", float, minimum=0.0)
        out.append(dict(s))
    return tuple(out), max_bytes


def _mixtures(raw: Any) -> tuple[Any, ...]:
    if raw is None:
        return ("natural", "uniform", "one-hot")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("mixtures: expected a non-empty list (natural, uniform, one-hot, or {domain: weight})")
    for i, m in enumerate(raw):
        if isinstance(m, str):
            if m not in NAMED_MIXTURES:
                raise ConfigError(f"mixtures[{i}]: expected one of {', '.join(NAMED_MIXTURES)} or a mapping, got {m!r}")
        elif isinstance(m, dict):
            for k, v in m.items():
                _typed(v, f"mixtures[{i}].{k}", float, minimum=0.0)
        else:
            raise ConfigError(f"mixtures[{i}]: expected a name or a mapping of domain to weight, got {m!r}")
    return tuple(raw)


def parse_swarm_config(raw: Any, base_dir: str) -> SwarmConfig:
    from proxies.train import TrainSettings

    raw = _check_keys(raw, "config", SWARM_KEYS)
    for key in ("pool", "output", "eval"):
        if key not in raw:
            raise ConfigError(f"{key}: required key is missing")
    base_dir = os.path.abspath(base_dir)
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds: expected a non-empty list of integers, got {seeds!r}")
    domains = raw.get("domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise ConfigError(f"domains: expected a list of domain names, got {domains!r}")
    eval_sets, eval_max_bytes = _eval_sets(raw["eval"])
    cfg = SwarmConfig(
        base_dir=base_dir,
        pool=os.path.normpath(os.path.join(base_dir, _typed(raw["pool"], "pool", str))),
        output=os.path.normpath(os.path.join(base_dir, _typed(raw["output"], "output", str))),
        domain_column=_typed(raw.get("domain_column", "source"), "domain_column", str),
        domains=tuple(domains),
        heldout_fraction=_typed(raw.get("heldout_fraction", 0.1), "heldout_fraction", float, minimum=0.0),
        tokenizer=_dataclass_section(TokenizerSettings, raw.get("tokenizer"), "tokenizer"),
        proxy=_dataclass_section(ProxySettings, raw.get("proxy"), "proxy"),
        train=_dataclass_section(TrainSettings, raw.get("train"), "train"),
        eval_sets=eval_sets,
        eval_max_bytes=eval_max_bytes,
        mixtures=_mixtures(raw.get("mixtures")),
        seeds=tuple(seeds),
        mix=_dataclass_section(MixSettings, raw.get("mix"), "mix"),
    )
    m = cfg.mix
    if m.budget_tokens <= 0 or m.max_epochs <= 0:
        raise ConfigError("mix.budget_tokens and mix.max_epochs: expected values > 0")
    if not 0 < m.min_concentration <= m.max_concentration:
        raise ConfigError("mix.min_concentration: expected 0 < min_concentration <= max_concentration")
    if m.confirm_runs < 1:
        raise ConfigError("mix.confirm_runs: expected a value >= 1")
    if cfg.tokenizer.kind not in ("bytes", "bpe"):
        raise ConfigError(f"tokenizer.kind: expected bytes or bpe, got {cfg.tokenizer.kind!r}")
    if not 0.0 < cfg.heldout_fraction < 1.0:
        raise ConfigError(f"heldout_fraction: expected a value between 0 and 1, got {cfg.heldout_fraction}")
    if cfg.proxy.d_model % max(cfg.proxy.n_head, 1) or cfg.proxy.n_head < 1:
        raise ConfigError("proxy.d_model: expected a multiple of proxy.n_head")
    if cfg.train.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device: expected auto, cpu or cuda, got {cfg.train.device!r}")
    for key in ("steps", "batch", "group_size"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key}: expected a value >= 1")
    if not 0.0 <= cfg.train.average_last < 1.0:
        raise ConfigError(f"train.average_last: expected a fraction of the steps in [0, 1), got {cfg.train.average_last}")
    if m.noise_mixtures < 0 or m.noise_seeds < 0:
        raise ConfigError("mix.noise_mixtures and mix.noise_seeds: expected values >= 0")
    return cfg


def load_swarm_config(path: str) -> SwarmConfig:
    """Read and validate a swarm or mix config file."""
    return parse_swarm_config(*load_yaml(path))


# ---- classifier training --------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassifierTrainConfig:
    base_dir: str
    name: str
    output: str
    positive: str | None  # the label whose probability is the quality score; None for a domain classifier
    labels: dict  # label -> list of data specs: {paths: [...], text_field} or {pool, sources, sample}
    params: Any  # classifiers.fasttext_model.TrainParams
    chunk_words: int  # split long documents into pieces of this many words (0: whole documents)


def parse_classifier_config(raw: Any, base_dir: str) -> ClassifierTrainConfig:
    from classifiers.fasttext_model import TrainParams

    raw = _check_keys(raw, "config", {"name", "output", "positive", "labels", "params", "chunk_words"})
    for key in ("name", "output", "labels"):
        if key not in raw:
            raise ConfigError(f"{key}: required key is missing")
    base_dir = os.path.abspath(base_dir)
    labels = raw["labels"]
    if not isinstance(labels, dict) or len(labels) < 2:
        raise ConfigError("labels: expected a mapping of at least two labels to their data")
    out: dict[str, list[dict]] = {}
    for label, specs in labels.items():
        if not isinstance(label, str) or not _NAME.match(label):
            raise ConfigError(f"labels.{label}: expected a label of letters, digits, '_' or '-'")
        if not isinstance(specs, list) or not specs:
            raise ConfigError(f"labels.{label}: expected a non-empty list of data sources")
        out[label] = []
        for i, spec in enumerate(specs):
            where = f"labels.{label}[{i}]"
            spec = _check_keys(spec, where, {"paths", "text_field", "pool", "sources", "sample"})
            if ("paths" in spec) == ("pool" in spec):
                raise ConfigError(f"{where}: expected exactly one of paths, pool")
            entry = dict(spec)
            if "paths" in spec:
                files: list[str] = []
                for j, pattern in enumerate(spec["paths"] if isinstance(spec["paths"], list) else [spec["paths"]]):
                    full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
                    matched = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
                    if not matched:
                        raise ConfigError(f"{where}.paths[{j}]: {pattern!r} matches no file")
                    files.extend(matched)
                entry["paths"] = files
            else:
                pool = os.path.join(base_dir, spec["pool"])
                if not glob.glob(os.path.join(pool, "kept", "*.parquet")):
                    raise ConfigError(f"{where}.pool: no curated shards in {spec['pool']}/kept")
                entry["pool"] = pool
                if "sample" in spec:
                    _typed(spec["sample"], f"{where}.sample", int, minimum=1)
            out[label].append(entry)
    positive = raw.get("positive")
    if positive is not None and positive not in out:
        raise ConfigError(f"positive: {positive!r} is not one of the labels {sorted(out)}")
    return ClassifierTrainConfig(
        base_dir=base_dir,
        name=_typed(raw["name"], "name", str),
        output=os.path.join(base_dir, _typed(raw["output"], "output", str)),
        positive=positive,
        labels=out,
        params=_dataclass_section(TrainParams, raw.get("params"), "params"),
        chunk_words=_typed(raw.get("chunk_words", 0), "chunk_words", int, minimum=0),
    )


class _Loader(yaml.SafeLoader):
    """YAML without aliases: `*name` can expand a few lines into billions of nodes (the "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"config: line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                              "supported in refinery configs; write the value out")
        return super().compose_node(parent, index)


def load_yaml(path: str) -> tuple[Any, str]:
    """A YAML file's content and its folder; a missing file or bad YAML is a ConfigError."""
    if not os.path.isfile(path):
        raise ConfigError(f"config: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader), os.path.dirname(os.path.abspath(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from exc


# ---- the shards job -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShardsConfig:
    base_dir: str
    pool: str
    output: str
    weights: dict  # domain -> weight (from mix.yaml or given inline), normalised
    budget_tokens: float
    domain_column: str
    max_epochs: float
    seed: int
    tokenizer: dict  # {kind: bytes} | {kind: bpe, path: tokenizer.json}
    shard_tokens: int
    exclude_heldout_fraction: float  # documents the proxies held out for evaluation (0: none)
    score: str | None  # the score that orders repeats by value; default: the highest quality_* score
    mix_file: str | None
    profile: dict  # allow_licenses / deny_licenses / allow_consent: lists of labels


SHARDS_KEYS = {"pool", "output", "mix", "weights", "budget_tokens", "domain_column", "max_epochs", "seed",
               "tokenizer", "shard_tokens", "exclude_heldout_fraction", "score", "profile"}


def parse_shards_config(raw: Any, base_dir: str) -> ShardsConfig:
    raw = _check_keys(raw, "config", SHARDS_KEYS)
    for key in ("pool", "output"):
        if key not in raw:
            raise ConfigError(f"{key}: required key is missing")
    base_dir = os.path.abspath(base_dir)
    mix: dict = {}
    mix_file = None
    if "mix" in raw:
        mix_file = os.path.join(base_dir, _typed(raw["mix"], "mix", str))
        if not os.path.isfile(mix_file):
            raise ConfigError(f"mix: file not found: {raw['mix']} (run `refinery mix` first, or give weights)")
        with open(mix_file, encoding="utf-8") as fh:
            mix = yaml.safe_load(fh) or {}
    if ("weights" in raw) == bool(mix_file):
        raise ConfigError("weights: expected exactly one of mix (a mix.yaml) or weights")
    weights = raw.get("weights") or mix.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ConfigError("weights: expected a mapping of domain to weight")
    for k, v in weights.items():
        _typed(v, f"weights.{k}", float, minimum=0.0)
    total = float(sum(weights.values()))
    if total <= 0:
        raise ConfigError("weights: expected at least one weight above 0")
    budget = raw.get("budget_tokens", mix.get("budget_tokens"))
    if budget is None:
        raise ConfigError("budget_tokens: required (or taken from mix.yaml)")
    budget = _typed(budget, "budget_tokens", float, minimum=1.0)
    tok = _check_keys(raw.get("tokenizer", {"kind": "bytes"}), "tokenizer", {"kind", "path"})
    if tok.get("kind", "bytes") not in ("bytes", "bpe"):
        raise ConfigError(f"tokenizer.kind: expected bytes or bpe, got {tok.get('kind')!r}")
    if tok.get("kind") == "bpe":
        if "path" not in tok:
            raise ConfigError("tokenizer.path: a bpe tokenizer needs the tokenizer JSON written by `refinery mix`")
        tok = {"kind": "bpe", "path": os.path.join(base_dir, tok["path"])}
    return ShardsConfig(
        base_dir=base_dir,
        pool=os.path.normpath(os.path.join(base_dir, _typed(raw["pool"], "pool", str))),
        output=os.path.normpath(os.path.join(base_dir, _typed(raw["output"], "output", str))),
        weights={k: float(v) / total for k, v in weights.items()},
        budget_tokens=budget,
        domain_column=_typed(raw.get("domain_column", mix.get("domain_column", "source")), "domain_column", str),
        max_epochs=_typed(raw.get("max_epochs", 4.0), "max_epochs", float, minimum=1.0),
        seed=_typed(raw.get("seed", 0), "seed", int),
        tokenizer=dict(tok),
        shard_tokens=_typed(raw.get("shard_tokens", 50_000_000), "shard_tokens", int, minimum=1000),
        exclude_heldout_fraction=_typed(raw.get("exclude_heldout_fraction", mix.get("heldout_fraction", 0.0)),
                                        "exclude_heldout_fraction", float, minimum=0.0),
        score=raw.get("score"),
        mix_file=mix_file,
        profile=_profile(raw.get("profile")),
    )


def _profile(raw: Any) -> dict:
    section = _check_keys(raw, "profile", {"allow_licenses", "deny_licenses", "allow_consent"})
    out = {}
    for key, value in section.items():
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"profile.{key}: expected a list of labels, got {value!r}")
        out[key] = sorted(value)
    return out
