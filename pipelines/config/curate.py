"""The curate job's config (`refinery curate`): sources, output and one section per stage.

Every relative path is resolved against the config file's folder. `CurateConfig.hash` is a hash of the
normalised config (not of the file's bytes), written into the manifest.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import zlib
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_serializer, field_validator, model_validator

from pipelines.filter.rules import C4_LINE_FILTER, RULES_BY_NAME
from pipelines.config.base import (ConfigError, Job, KeyedError, Name, Named, Section, Strings, load_yaml, resolve,
                                   validate)
from pipelines.config.extract import ExtractSettings
from pipelines.config.inputs import glob_regex, glob_root, match_files
from pipelines.runtime import storage
from pipelines.runtime.storage import StorageError

Format = Literal["html", "warc", "jsonl", "parquet", "text", "pdf"]
RuleName = Literal[tuple(sorted(RULES_BY_NAME)) + (C4_LINE_FILTER,)]  # type: ignore[valid-type]
Rules = dict[RuleName, bool | float]  # a rule's threshold, or false (off) / true (its default)


def _existing_files(paths: tuple[str, ...], info: ValidationInfo, what: str = "file") -> tuple[str, ...]:
    out = []
    for i, p in enumerate(paths):
        full = resolve(p, info)
        if not storage.isfile(full):
            raise KeyedError(str(i), f"{what} not found: {p}")
        out.append(full)
    return tuple(out)


def _fasttext_file(path: str, info: ValidationInfo) -> str:
    from classifiers.fasttext_model import check_model_file

    full = resolve(path, info)
    if not storage.isfile(full):
        raise ValueError(f"model file not found: {path} (train it with `refinery classifier train`)")
    problem = check_model_file(storage.local_copy(full))
    if problem:
        raise ValueError(problem)
    return full


class Source(Section):
    """One input source: a name, a format and the globs of its files."""

    name: Name = Field(description="unique name: letters, digits, '_', '-' or '.'")
    format: Format
    paths: Strings = Field((), description="globs, relative to the config file; ** spans folders")
    paths_from: str | None = Field(None, description="a file listing inputs, one per line (gunzipped when it ends "
                                   "in .gz; blank lines and lines starting with # skipped), e.g. a crawl's "
                                   "warc.paths.gz; relative to the config file")
    paths_base: str | None = Field(None, description="the folder the listed paths are relative to (default: the "
                                   "list's own folder)")
    text_field: str = Field("text", description="JSONL/Parquet: the column holding the text")
    url_field: str = Field("url", description="JSONL/Parquet: the column holding the URL")
    license: str | None = Field(None, description="SPDX id or label; a record's own `license` field wins")
    attribution: str | None = None
    consent: str | None = Field(None, description="e.g. explicit, public-web, unknown; a record's field wins")
    follow_symlinks: bool = Field(False, description="off: symbolic links under the globs are skipped")

    @field_validator("paths")
    @classmethod
    def _non_empty(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        if not all(paths):
            raise ValueError("expected non-empty glob strings")
        return paths

    @model_validator(mode="after")
    def _some_inputs(self) -> Source:
        if not self.paths and not self.paths_from:
            raise ValueError("give the source's inputs: `paths` (globs), `paths_from` (a file listing them), or both")
        if self.paths_base and not self.paths_from:
            raise ValueError("`paths_base` says where the paths of `paths_from` are: set `paths_from` too")
        return self


class LanguageSettings(Section):
    engine: Literal["fasttext", "py3langid"] = Field("fasttext", description="fasttext runs lid.176")
    keep: Strings = Field((), description="ISO 639-1 codes to keep; empty keeps every language")
    min_score: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["table"] = Field(
        0.0, description="the language ID confidence a document needs: one number for every language, or "
        "`table`: each language's own (pipelines/lang/thresholds.json; 0.3 for a language without a row)")
    report_min_docs: int = Field(50, ge=0, description="in stats and the data card, languages with fewer "
                                 "documents read are grouped as `other`")


class LanguageRules(Section):
    """Overrides for one language: rule thresholds (or false: off) and its language ID threshold."""

    rules: Rules = {}
    min_score: float | None = Field(None, ge=0.0, le=1.0)


class FilterSettings(Section):
    """Language ID and the heuristic rules of pipelines/filter/rules.py.

    A document's thresholds are, from the least to the most specific: the published (English) thresholds; its
    language's row of the threshold table (`table: false` skips it); `rules`, for every source and language;
    `languages.<code>.rules`, for that language; `sources.<name>`, for that source. Each maps a rule name to a
    threshold, or false to switch it off. `c4_line_filter: true` turns on C4's line filter.
    """

    enabled: bool = True
    language: LanguageSettings = LanguageSettings()
    table: bool = Field(True, description="per-language thresholds from pipelines/lang/thresholds.json")
    rules: Rules = {}
    languages: dict[str, LanguageRules] = {}
    sources: dict[str, Rules] = {}

    @field_validator("languages")
    @classmethod
    def _language_switches(cls, languages: dict) -> dict:
        for code, entry in languages.items():
            try:
                cls._switch(entry.rules)
            except KeyedError as exc:
                raise KeyedError(f"{code}.rules.{exc.key}", str(exc)) from None
        return languages

    @field_validator("rules")
    @classmethod
    def _switch(cls, rules: dict) -> dict:
        value = rules.get(C4_LINE_FILTER)
        if value is not None and not isinstance(value, bool):
            raise KeyedError(C4_LINE_FILTER, f"expected true or false, got {value!r}")
        return rules

    @field_validator("sources")
    @classmethod
    def _switches(cls, sources: dict) -> dict:
        for name, rules in sources.items():
            try:
                cls._switch(rules)
            except KeyedError as exc:
                raise KeyedError(f"{name}.{exc.key}", str(exc)) from None
        return sources

    def thresholds(self, source: str, lang: str | None = None) -> dict[str, Any]:
        """Enabled rules and their thresholds for one source and language (c4_line_filter maps to True when on)."""
        from pipelines.filter.rules import RULES
        from pipelines.lang.table import rule_thresholds

        out: dict[str, Any] = {r.name: r.default for r in RULES}
        if self.table:
            out.update(rule_thresholds(lang))
        per_language = self.languages[lang].rules if lang in self.languages else {}
        for overrides in (self.rules, per_language, self.sources.get(source, {})):
            for name, value in overrides.items():
                if value is False:
                    out.pop(name, None)
                elif value is True:
                    out[name] = True if name == C4_LINE_FILTER else RULES_BY_NAME[name].default
                else:
                    out[name] = value
        return out


    def min_score(self, lang: str | None) -> float:
        """The language ID confidence a document identified as `lang` needs."""
        from pipelines.lang.table import lid_min_score

        entry = self.languages.get(lang or "")
        if entry is not None and entry.min_score is not None:
            return entry.min_score
        return lid_min_score(lang) if self.language.min_score == "table" else float(self.language.min_score)


class OptoutSettings(Section):
    enabled: bool = True
    domains: Strings = Field((), description="files of blocked domains, one per line (subdomains blocked too)")
    urls: Strings = Field((), description="files of blocked URL patterns, one per line (shell-style: *, ?)")

    @field_validator("domains", "urls")
    @classmethod
    def _files(cls, paths: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _existing_files(paths, info)


class PiiSettings(Section):
    enabled: bool = True
    email: bool = True
    ip: bool = True
    phone: bool = True


class DecontamSettings(Section):
    enabled: bool = False
    paths: Strings = Field((), description="eval files (JSONL with text or context/gold, or plain text)")
    ngram: int = Field(13, ge=1)
    min_words: int = Field(8, ge=0, description="eval items shorter than this are not indexed")

    @field_validator("paths")
    @classmethod
    def _files(cls, paths: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _existing_files(paths, info)

    @model_validator(mode="after")
    def _needs_evals(self) -> DecontamSettings:
        if self.enabled and not self.paths:
            raise KeyedError("paths", "expected at least one eval file when decontam is enabled")
        return self


class MinHashSettings(Section):
    enabled: bool = True
    ngram: int = Field(5, ge=1, description="word n-gram shingles over normalised text")
    bands: int = Field(14, ge=1, le=255)
    rows: int = Field(8, ge=1, description="14 x 8 = 112 hash functions: Jaccard 0.8 is a candidate with p = 0.92")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="a candidate is a duplicate at this shingle Jaccard")
    seed: int = Field(42, ge=0)
    exact_margin: float = Field(
        2.5, ge=0.0, description="candidate pairs whose signature estimate lies within this many standard errors "
        "of the threshold get the exact shingle Jaccard; the others are decided on the estimate")
    max_bucket: int = Field(64, ge=2, description="larger LSH buckets give O(size) pairs instead of all pairs")
    cc_rounds: int = Field(4, ge=0, description="large-star/small-star rounds before the rest is resolved")


class DedupSettings(Section):
    enabled: bool = True
    exact: bool = True
    url: bool = True
    url_keep: Literal["newest", "best"] = "newest"
    quality_score: str | None = Field(None, description="the score that picks survivors; default: highest quality_*")
    minhash: MinHashSettings = MinHashSettings()


class QualityModel(Section):
    """A fastText quality classifier: its probability of `label` is the `quality_<name>` column."""

    name: Name
    path: str = Field(description="the model file (`refinery classifier train` writes it)")
    label: str
    threshold: float | None = Field(None, ge=0.0, description="keep documents scoring at least this")
    keep_fraction: float | None = Field(None, gt=0.0, le=1.0, description="or keep this top share of each source")
    sources: Strings = Field((), description="the sources it applies to; empty: all")

    @field_validator("path")
    @classmethod
    def _model_file(cls, path: str, info: ValidationInfo) -> str:
        return _fasttext_file(path, info)

    @model_validator(mode="after")
    def _one_rule(self) -> QualityModel:
        if (self.threshold is None) == (self.keep_fraction is None):
            raise ValueError("expected exactly one of threshold, keep_fraction")
        return self


class DomainModel(Section):
    path: str
    min_score: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("path")
    @classmethod
    def _model_file(cls, path: str, info: ValidationInfo) -> str:
        return _fasttext_file(path, info)


class ClassifierSettings(Section):
    """fastText models applied in curate: quality classifiers, and a domain classifier for the `domain` column."""

    enabled: bool | None = Field(None, description="default: on when a model is given")
    models: Named[QualityModel] = ()
    domain: DomainModel | None = None

    @model_validator(mode="after")
    def _default_on(self) -> ClassifierSettings:
        if self.enabled is None:
            object.__setattr__(self, "enabled", bool(self.models or self.domain))
        return self

    @field_serializer("models")
    def _dump_models(self, models: tuple[QualityModel, ...]) -> list[dict]:
        return [m.model_dump(mode="json", exclude_none=True) for m in models]

    @field_serializer("domain")
    def _dump_domain(self, domain: DomainModel | None) -> dict:
        return domain.model_dump(mode="json") if domain else {}


class WriteSettings(Section):
    shard_bytes: int = Field(256_000_000, ge=100_000, description="a shard's text bytes before the next shard")
    row_group_rows: int = Field(5_000, ge=1)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int = Field(3, ge=0)


class ResumeSettings(Section):
    """Units are staged under OUTPUT/.work/ in pieces; a rerun after a crash skips what is staged."""

    enabled: bool = Field(True, description="false: a rerun stages every unit again")
    every_docs: int = Field(500, ge=1, description="a worker stages a piece of its unit after this many documents...")
    every_s: float = Field(30.0, ge=0, description="...or after this many seconds, whichever comes first")


class CurateConfig(Job):
    """`refinery curate`: read the sources, extract, filter, deduplicate, score and write Parquet shards."""

    sources: Annotated[Named[Source], Field(min_length=1)]
    output: str = Field(description="the output folder (new, empty, or written by refinery before)")
    extract: ExtractSettings = ExtractSettings()
    optout: OptoutSettings = OptoutSettings()
    filters: FilterSettings = FilterSettings()
    pii: PiiSettings = PiiSettings()
    decontam: DecontamSettings = DecontamSettings()
    dedup: DedupSettings = DedupSettings()
    classifiers: ClassifierSettings = ClassifierSettings()
    write: WriteSettings = WriteSettings()
    resume: ResumeSettings = ResumeSettings()

    @field_validator("output")
    @classmethod
    def _resolve(cls, output: str, info: ValidationInfo) -> str:
        return resolve(output, info)

    @model_validator(mode="after")
    def _output_apart(self) -> CurateConfig:
        check_output(self)
        return self

    @property
    def hash(self) -> str:
        # neither checkpoint frequency nor where the project lies changes the output
        body = self.model_dump(mode="json", exclude={"resume", "base", "storage"})
        body["output"] = storage.relative(self.output, self.base_dir) or self.output
        text = json.dumps(body, sort_keys=True).replace(self.base_dir.rstrip("/") + "/", "")  # model and eval paths
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def source_files(self, source: Source) -> list[str]:
        """Absolute, sorted, de-duplicated file paths of a source. A glob that matches nothing is an error."""
        files: set[str] = set()
        for i, pattern in enumerate(source.paths):
            full = storage.join(self.base_dir, pattern)
            with storage.user_errors(f"sources[{source.name}].paths[{i}]"):
                matched = match_files(full, source.follow_symlinks)
            if not matched:
                raise ConfigError(
                    f"sources[{source.name}].paths[{i}]: {pattern!r} matches no file (looked for {full}"
                    + ("; symbolic links are skipped: set follow_symlinks: true to read them)"
                       if not source.follow_symlinks and not storage.is_url(full) and glob.glob(full, recursive=False)
                       else ")")
                )
            files.update(matched)
        if source.paths_from:
            files.update(self._listed_files(source))
        return sorted(files)

    def _listed_files(self, source: Source) -> list[str]:
        """The files `paths_from` lists, made absolute against `paths_base` (or the list's folder). A list that
        cannot be read, or that names a file that is not there, is an error (nothing listed is left out)."""
        assert source.paths_from is not None
        where = f"sources[{source.name}].paths_from"
        listing = storage.join(self.base_dir, source.paths_from)
        base = storage.join(self.base_dir, source.paths_base) if source.paths_base else storage.dirname(listing)
        try:
            with storage.user_errors(f"{where}: cannot read {listing}"), storage.open(listing, "rb") as raw:
                data = gzip.decompress(raw.read()) if listing.endswith(".gz") else raw.read()
            lines = [line.strip() for line in data.decode("utf-8").splitlines()]
        except StorageError:
            raise
        except (OSError, UnicodeDecodeError, EOFError, zlib.error) as exc:
            raise ConfigError(f"{where}: cannot read {listing} ({type(exc).__name__}: {exc})") from None
        paths = [storage.normalize(storage.join(base, line)) for line in lines if line and not line.startswith("#")]
        if not paths:
            raise ConfigError(f"{where}: {listing} lists no file")
        with storage.user_errors(where):
            found = storage.infos([p for p in paths if storage.is_url(p)])
            missing = [p for p in paths if (found[p] is None if p in found else not storage.isfile(p))]
        if missing:
            raise ConfigError(f"{where}: {len(missing)} of the {len(paths)} files {listing} lists are not there "
                              f"(the first: {missing[0]}); set paths_base if they are relative to another folder")
        return paths

    def uri(self, path: str) -> str:
        """The `source_uri` of a file: its path relative to the config folder (or `base`), so ids survive a move;
        a file elsewhere keeps its whole path or URL."""
        rel = storage.relative(path, self.base_dir)
        if rel is None:
            rel = path if storage.is_url(path) else os.path.relpath(path, self.base_dir)
        rel = rel.replace(os.sep, "/")
        # a file name that is not UTF-8 comes back from the OS with lone surrogates: spell its bytes out
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# What a curate run writes in its output folder (the data card's files included).
OUTPUT_NAMES = ("stats.json", "manifest.json", "data_card.json", "data_card.md", "funnel.png", "licenses.png",
                "kept/part-00000-of-00001.parquet", "rejected/part-00000-of-00001.parquet", ".refinery", "_SUCCESS")


def check_output(cfg: CurateConfig) -> None:
    """The output folder must be a folder, and no input glob may match what refinery writes in it (a rerun
    would read its own output). Input files inside it are refused when the inputs are listed."""
    if not storage.is_url(cfg.output) and os.path.exists(cfg.output) and not os.path.isdir(cfg.output):
        raise KeyedError("output", f"{cfg.output} exists and is not a folder")
    for i, source in enumerate(cfg.sources):
        for j, pattern in enumerate(source.paths):
            full = storage.normalize(storage.join(cfg.base_dir, pattern))
            root = glob_root(full)
            regex = re.compile(glob_regex(storage.relative(full, root) or ""))
            for name in OUTPUT_NAMES:
                written = storage.join(cfg.output, name)
                rel = storage.relative(written, root)
                if rel is not None and regex.fullmatch(rel):
                    raise KeyedError(f"sources.{i}.paths.{j}", f"{pattern!r} matches {written}, which refinery "
                                     "writes: choose an output folder outside the inputs")


def check_inputs_outside_output(cfg: CurateConfig, files: list[str]) -> None:
    """Publishing replaces OUTPUT/kept and OUTPUT/rejected: no input may live in the output folder."""
    for path in files:
        if storage.inside(path, cfg.output):
            raise ConfigError(f"output: {cfg.output} holds the input file {path}: refinery replaces folders in its "
                              "output; choose an output folder outside the inputs")


def parse_config(raw: Any, base: str) -> CurateConfig:
    """Validate a loaded YAML mapping. `base` anchors relative paths."""
    return validate(CurateConfig, raw, base)


def load_config(path: str) -> CurateConfig:
    """Read and validate a curate config file."""
    return parse_config(*load_yaml(path))
