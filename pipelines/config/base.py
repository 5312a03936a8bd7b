"""What every job's config shares: the strict section base, YAML loading, and errors that name the bad key.

Each job declares its config as pydantic models (one module per job). Validation collects every problem at
once; `ConfigError` holds one line per problem, each starting with the dotted key at fault.
"""
from __future__ import annotations

import os
import re
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError,
                      ValidationInfo)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A bad config: one line per problem, each starting with the dotted key at fault."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class KeyedError(ValueError):
    """Raised in a validator for a problem of a key below the one being validated (`key` is relative)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Section(BaseModel):
    """A config section: unknown keys refused, no type coercion (except int to float), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Job(Section):
    """A job's whole config; `base_dir` is the folder relative paths are resolved against: the config file's, or
    the job's `base` (a folder or a URL such as s3://bucket/project)."""

    base: str | None = Field(None, description="resolve relative paths against this folder or URL (s3://, gs://, "
                             "az://...) instead of the config file's folder; ids stay the same when it moves")
    storage: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="non-secret options per protocol, e.g. {s3: {anon: true}} for a public "
        "bucket, {s3: {endpoint_url: ...}}; credentials come from the environment, never from here")
    _base_dir: str = PrivateAttr(default="")

    def model_post_init(self, context: Any) -> None:
        self._base_dir = _anchor(context)

    @property
    def base_dir(self) -> str:
        return self._base_dir


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _one_or_many(value: Any) -> Any:
    """A single string where a list of strings is expected is a one-item list; YAML lists become tuples."""
    return (value,) if isinstance(value, str) else _as_tuple(value)


def _unique_names(items: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name in seen:
            raise KeyedError(f"{i}.name", f"{item.name!r} is used twice")
        seen.add(item.name)
    return items


T = TypeVar("T")
Strings = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]
Items = Annotated[tuple[T, ...], BeforeValidator(_as_tuple)]  # a YAML list of T
Named = Annotated[tuple[T, ...], BeforeValidator(_as_tuple), AfterValidator(_unique_names)]  # ...each named once


def _anchor(context: dict | None) -> str:
    """The folder relative paths are resolved against: the config's (validation context), else the cwd."""
    from pipelines.runtime import storage

    return storage.normalize((context or {}).get("base_dir") or os.getcwd())


def resolve(path: str, info: ValidationInfo) -> str:
    """A config's path made absolute: a URL as it is, a relative path against the config's folder (or `base`)."""
    from pipelines.runtime import storage

    return storage.normalize(storage.join(_anchor(info.context), path))


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"expected letters, digits, '_', '-' or '.', got {name!r}")
    return name


Name = Annotated[str, AfterValidator(check_name)]  # letters, digits, '_', '-' or '.'


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], raw: Any, base: str) -> M:
    """`raw` (a loaded YAML mapping) as `model`, relative paths anchored at `base`; every problem in one error."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of keys, got {type(raw).__name__}")
    from pipelines.runtime import storage

    anchor = storage.normalize(base)
    if isinstance(raw.get("base"), str) and raw["base"]:
        anchor = storage.normalize(storage.join(anchor, raw["base"]))
    if isinstance(raw.get("storage"), dict):
        storage.configure(raw["storage"])  # before any path is looked at
    try:
        return model.model_validate(raw, context={"base_dir": anchor})
    except ValidationError as exc:
        problems = _problems(model, exc.errors())
        raise ConfigError("\n".join(problems), problems) from None


def _problems(model: type[BaseModel], errors: list[dict]) -> list[str]:
    """One line per key at fault: the shapes a union accepts are joined ("expected bool or float"), and a list
    is not also called too short because one of its items is bad."""
    locs = [tuple(p for p in e["loc"] if not _is_union_tag(p)) for e in errors]
    found: dict[str, list[tuple[str, str | None]]] = {}
    for loc, error in zip(locs, errors):
        if error["type"] == "too_short" and any(o != loc and o[:len(loc)] == loc for o in locs):
            continue
        key, text, given = _problem(model, dict(error, loc=loc))
        found.setdefault(key, []).append((text, given))
    out = []
    for key, texts in found.items():
        if len(texts) > 1 and all(t.startswith("expected ") and g is not None for t, g in texts):
            shapes = " or ".join(t.removeprefix("expected ") for t, _ in texts)
            texts = [(f"expected {shapes}", texts[0][1])]
        out.extend(dict.fromkeys(f"{key}: {t}" + (f", got {g}" if g is not None else "") for t, g in texts))
    return out


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


_EXPECTED = {
    "bool_type": "expected bool", "int_type": "expected int", "float_type": "expected float",
    "string_type": "expected str", "tuple_type": "expected a list", "list_type": "expected a list",
    "dict_type": "expected a mapping", "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
    "int_from_float": "expected int", "float_parsing": "expected float", "bool_parsing": "expected bool",
    "too_short": "expected at least {min_length} item(s)",
    "greater_than": "expected a value > {gt}", "greater_than_equal": "expected a value >= {ge}",
    "less_than": "expected a value < {lt}", "less_than_equal": "expected a value <= {le}",
}


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() and abs(value) < 1e15 else str(value)


def _brief(value: Any) -> str:
    text = repr(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unknown_key(choices: list[str]) -> str:
    return "unknown key" + (f" (expected one of: {', '.join(choices)})" if choices else "")


def _problem(model: type[BaseModel], error: dict) -> tuple[str, str, str | None]:
    """(dotted key, what is wrong, the value given or None) of one pydantic error."""
    loc = error["loc"]
    kind = error["type"]
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))  # of a Literal
    if isinstance(cause, KeyedError):
        below = tuple(int(k) if k.isdigit() else k for k in cause.key.split("."))
        return dotted(loc + below), str(cause), None
    if loc and loc[-1] == "[key]":  # a mapping's key outside its enumeration (a rule name, say)
        return dotted(loc[:-1]), _unknown_key(choices), None
    if kind == "missing":
        return dotted(loc), "required key is missing", None
    if kind == "extra_forbidden":
        return dotted(loc), _unknown_key(_allowed_keys(model, loc[:-1])), None
    if kind == "value_error":
        return dotted(loc), str(cause if cause is not None else error["msg"]), None
    if kind == "literal_error":
        return dotted(loc), f"expected one of {', '.join(choices)}", _brief(error["input"])
    template = _EXPECTED.get(kind)
    text = template.format(**{k: _number(v) for k, v in ctx.items()}) if template else error["msg"][0].lower() + error["msg"][1:]
    return dotted(loc), text, _brief(error["input"])


def _is_union_tag(part: Any) -> bool:
    """pydantic names the branch of a union it tried in the location (`str`, `dict[str,float]`...)."""
    return isinstance(part, str) and part != "[key]" and (
        part in {"str", "int", "float", "bool"} or "[" in part or part.startswith(("literal", "function-")))


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a section accepts, found by walking the model's fields along `loc`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = section_in(fields[part].annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def section_in(annotation: Any) -> Any:
    """The model class inside an annotation like `X`, `X | None`, `tuple[X, ...]` or `dict[str, tuple[X, ...]]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(getattr(annotation, "__args__", ()) or ()):
        found = section_in(arg)
        if found is not None:
            return found
    return None


# ---- YAML -------------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """YAML without aliases (`*name` can expand a few lines into billions of nodes, the "billion laughs"),
    and with `1e9` read as a number (YAML 1.1 wants `1.0e+9`)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"config: line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                              "supported in refinery configs; write the value out")
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(path: str) -> tuple[Any, str]:
    """A YAML file's content and its folder; a missing file or bad YAML is a ConfigError."""
    if not os.path.isfile(path):
        raise ConfigError(f"config: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader), os.path.dirname(os.path.abspath(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: not valid YAML: {' '.join(str(exc).split())}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from None
