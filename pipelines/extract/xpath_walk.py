"""trafilatura's XPath expressions that test class and id names (`re:test`, `contains`, `starts-with`,
`translate`), evaluated as tree walks that select the same elements in the same order, several times faster.

lxml runs each `re:test` as a call back into Python, once per element it reaches, and the string tests on every
element: trafilatura spent about a third of its time per WCXB page in such expressions. Here each expression is
read (not copied) from trafilatura's own text at run time and compiled into a Python test of one element, whose
answers are remembered by the element's tag and the attribute values it reads (a page repeats its class names),
over the descendants lxml filters by tag in C. An expression this reader does not understand keeps lxml's
evaluation. `installed()` puts the walks in place for a `with` block only. tests/test_xpath_walk.py checks the
walks against lxml on real pages, at trafilatura's call sites and on generated trees.

The subset read: `.//name` or `.//*` steps with predicates, `(...)[1]`, a trailing `[1]`, unions of such paths;
in predicates `or`, `and`, `not()`, parentheses, `self::name`, `@a`, `@a|@b`, `@a='text'`, `contains`,
`starts-with`, `translate`, `re:test` with the `i` flag, and `.//name` as a test for a descendant.
"""
from __future__ import annotations

import itertools
import re
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Iterator

from lxml import etree

_TOKEN = re.compile(r"\s*(?:(\.//)|('[^']*')|(\d+)|(::)|([()\[\]|,=@*])|([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?))")
MEMO_LIMIT = 4096  # remembered answers per test (about 1 MB); past it the older half is dropped
COSTLY = ("re:test(", "contains(", "starts-with(", "translate(")  # string tests lxml runs per element


class Unsupported(ValueError):
    """An expression outside the subset this module reads."""


def _tokens(text: str) -> list[str]:
    out, at, text = [], 0, text.strip()
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None or m.end() == at:
            raise Unsupported(f"cannot read {text[at:at + 20]!r}")
        out.append(m.group(m.lastindex))
        at = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens; every test becomes a tuple (kind, ...)."""

    def __init__(self, text: str) -> None:
        self.toks, self.at = _tokens(text), 0

    def peek(self, ahead: int = 0) -> str | None:
        i = self.at + ahead
        return self.toks[i] if i < len(self.toks) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise Unsupported(f"expected {want!r}, found {tok!r}")
        self.at += 1
        return tok

    def union(self) -> list[tuple]:
        branches = [self.path()]
        while self.peek() == "|":
            self.take()
            branches.append(self.path())
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()!r}")
        return branches

    def path(self) -> tuple:
        """('path', name, predicates, first) where first is None, 'parent' (a trailing [1]) or 'all' ((...)[1])."""
        if self.peek() == "(":
            self.take("(")
            _, name, preds, first = self.path()
            self.take(")")
            if first is not None:
                raise Unsupported("nested positions")
            self.take("[")
            self.take("1")
            self.take("]")
            return ("path", name, preds, "all")
        self.take(".//")
        name = self.take()
        if name != "*" and not re.fullmatch(r"[A-Za-z][\w-]*", name):
            raise Unsupported(f"step {name!r}")
        preds, first = [], None
        while self.peek() == "[":
            self.take("[")
            if self.peek() == "1" and self.peek(1) == "]":
                self.take()
                first = "parent"
            else:
                if first is not None:
                    raise Unsupported("a predicate after a position")
                preds.append(self.or_())
            self.take("]")
        return ("path", name, preds, first)

    def or_(self) -> tuple:
        terms = [self.and_()]
        while self.peek() == "or":
            self.take()
            terms.append(self.and_())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def and_(self) -> tuple:
        terms = [self.unary()]
        while self.peek() == "and":
            self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def unary(self) -> tuple:
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.or_()
            self.take(")")
            return inner
        if tok == "not" and self.peek(1) == "(":
            self.take()
            self.take("(")
            inner = self.or_()
            self.take(")")
            return ("not", inner)
        if tok == "self" and self.peek(1) == "::":
            self.take()
            self.take("::")
            return ("tag", self.take())
        if tok == ".//":
            self.take()
            name = self.take()
            if not re.fullmatch(r"[A-Za-z][\w-]*", name):
                raise Unsupported(f"descendant {name!r}")
            return ("has", name)
        if tok == "@":
            names = self.attrs()
            if self.peek() == "=":
                self.take()
                return ("eq", names, self.string())
            return ("exists", names)
        if tok in ("contains", "starts-with"):
            self.take()
            self.take("(")
            value = self.value()
            self.take(",")
            needle = self.string()
            self.take(")")
            return (tok, value, needle)
        if tok == "re:test":
            self.take()
            self.take("(")
            value = self.value()
            self.take(",")
            pattern = self.string()
            flags = ""
            if self.peek() == ",":
                self.take()
                flags = self.string()
            self.take(")")
            if set(flags) - {"i"}:
                raise Unsupported(f"flags {flags!r}")
            return ("re", value, re.compile(pattern, re.IGNORECASE if "i" in flags else 0))
        raise Unsupported(f"test {tok!r}")

    def attrs(self) -> tuple[str, ...]:
        names = []
        while True:
            self.take("@")
            name = self.take()
            if not re.fullmatch(r"[A-Za-z][\w-]*", name):
                raise Unsupported(f"attribute {name!r}")
            names.append(name)
            if not (self.peek() == "|" and self.peek(1) == "@"):
                return tuple(names)
            self.take("|")

    def value(self) -> tuple:
        """A string argument: ('attrs', names) or ('translate', names, from, to)."""
        if self.peek() == "translate":
            self.take()
            self.take("(")
            names = self.attrs()
            self.take(",")
            src = self.string()
            self.take(",")
            dst = self.string()
            self.take(")")
            return ("translate", names, src, dst)
        return ("attrs", self.attrs())

    def string(self) -> str:
        tok = self.take()
        if not (len(tok) >= 2 and tok[0] == tok[-1] == "'"):
            raise Unsupported(f"expected a string, found {tok!r}")
        return tok[1:-1]


def _pick(element: Any, names: tuple[str, ...], values: tuple[str | None, ...]) -> str:
    """XPath's string value of `@a|@b`: the first of the attributes present, in the element's own order."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return present[0] if present else ""
    first = next(n for n in element.keys() if n in names)
    return values[names.index(first)]


def _translator(src: str, dst: str) -> dict[int, int | None]:
    table: dict[int, int | None] = {}
    for i, ch in enumerate(src):
        table.setdefault(ord(ch), ord(dst[i]) if i < len(dst) else None)
    return table


def _walk_tests(test: tuple) -> Iterator[tuple]:
    yield test
    if test[0] in ("or", "and"):
        for t in test[1]:
            yield from _walk_tests(t)
    elif test[0] == "not":
        yield from _walk_tests(test[1])


def _groups(test: tuple) -> list[tuple[str, ...]]:
    """The attribute groups (`@a` or `@a|@b`) a test reads, in a fixed order."""
    found = set()
    for t in _walk_tests(test):
        if t[0] in ("exists", "eq"):
            found.add(t[1])
        elif t[0] in ("contains", "starts-with", "re"):
            found.add(t[1][1])
    return sorted(found)


def _structural(test: tuple) -> bool:
    """Whether the test looks below the element (its answer is not a function of tag and attributes)."""
    return any(t[0] == "has" for t in _walk_tests(test))


class _Source:
    """A test as one Python expression over `e` (the element), `tag` and `v0`, `v1`... (attribute values, None
    where absent); constants (patterns, tables) are passed in by name."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.constants = names, {}

    def const(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def var(self, name: str) -> str:
        return f"v{self.names.index(name)}"

    def value(self, spec: tuple) -> str:
        names = spec[1]
        if len(names) == 1:
            text = f"({self.var(names[0])} or '')"
        else:
            text = f"_pick(e, {names!r}, ({', '.join(self.var(n) for n in names)},))"
        if spec[0] == "translate":
            text = f"{text}.translate({self.const(_translator(spec[2], spec[3]))})"
        return text

    def expr(self, test: tuple) -> str:
        kind = test[0]
        if kind in ("or", "and"):
            return "(" + f" {kind} ".join(self.expr(t) for t in test[1]) + ")"
        if kind == "not":
            return f"(not {self.expr(test[1])})"
        if kind == "tag":
            return f"(tag == {test[1]!r})"
        if kind == "has":
            return f"(e.find({'.//' + test[1]!r}) is not None)"
        if kind == "exists":
            return "(" + " or ".join(f"{self.var(n)} is not None" for n in test[1]) + ")"
        if kind == "eq":
            return "(" + " or ".join(f"{self.var(n)} == {test[2]!r}" for n in test[1]) + ")"
        if kind == "contains":
            return f"({test[2]!r} in {self.value(test[1])})"
        if kind == "starts-with":
            return f"{self.value(test[1])}.startswith({test[2]!r})"
        return f"({self.const(test[2].search)}({self.value(test[1])}) is not None)"


def _forget(memo: dict) -> None:
    """Drop the older half of the answers (a dict keeps insertion order): the recent ones are the site's."""
    for key in list(itertools.islice(memo, len(memo) // 2)):
        del memo[key]


def _predicate(test: tuple) -> Callable[[Any, str], bool]:
    """One bracketed test as a function of (element, tag). Unless it looks below the element, its answers are
    remembered by the tag (where it reads it) and the attribute values it reads, with their order where two of
    a group `@a|@b` are present."""
    groups = _groups(test)
    names = sorted({n for g in groups for n in g})
    source = _Source(names)
    body = source.expr(test)
    lines = ["def check(e, tag):", "    get = e.get"]
    lines += [f"    v{i} = get({n!r})" for i, n in enumerate(names)]
    if _structural(test):
        lines.append(f"    return bool({body})")
    else:
        key = ([ "tag"] if any(t[0] == "tag" for t in _walk_tests(test)) else []) + [f"v{i}" for i in range(len(names))]
        lines.append(f"    key = ({', '.join(key)},)")
        both = [" and ".join(f"{source.var(n)} is not None" for n in g) for g in groups if len(g) > 1]
        if both:
            lines.append(f"    if {' or '.join(f'({b})' for b in both)}:")
            lines.append("        key += tuple(e.keys())")
        lines += ["    hit = memo.get(key)",
                  "    if hit is None:",
                  "        if len(memo) >= MEMO_LIMIT:",
                  "            _forget(memo)",
                  f"        hit = memo[key] = bool({body})",
                  "    return hit"]
    scope = {"_pick": _pick, "_forget": _forget, "memo": {}, "MEMO_LIMIT": MEMO_LIMIT, **source.constants}
    exec(compile("\n".join(lines), "<xpath_walk>", "exec"), scope)  # noqa: S102 - source built above from parsed tests
    check = scope["check"]
    check.groups = groups
    return check


class _Branch:
    """One path of a union: its step's name, the tags its first test allows, its other tests, its position."""

    def __init__(self, path: tuple) -> None:
        _, name, tests, self.first = path
        self.name = None if name == "*" else name
        self.tags: frozenset[str] | None = None
        if tests and _only_tags(tests[0]):
            self.tags = frozenset(_tag_set(tests[0]))
            tests = tests[1:]
        self.tests = tuple(_predicate(t) for t in tests)

    def names(self) -> frozenset[str] | None:
        """The tags an element needs to be selected, or None for any."""
        if self.name is not None:
            return frozenset([self.name]) if self.tags is None or self.name in self.tags else frozenset()
        return self.tags


def _only_tags(test: tuple) -> bool:
    return test[0] == "tag" or (test[0] == "or" and all(t[0] == "tag" for t in test[1]))


def _tag_set(test: tuple) -> set[str]:
    return {test[1]} if test[0] == "tag" else {t[1] for t in test[1]}


class Walk:
    """A compiled expression: called on an element like lxml's XPath, it returns the same elements in document
    order (the element's descendants, as `.//` selects them)."""

    def __init__(self, text: str) -> None:
        self.path = text
        self.branches = [_Branch(p) for p in _Parser(text).union()]
        names = [b.names() for b in self.branches]
        # lxml filters the descendants by tag in C where every path names its tags
        self.iter_tags: tuple = tuple(sorted(set().union(*names))) if None not in names else (etree.Element,)
        self.positions = any(b.first for b in self.branches)
        # paths without tests select by tag alone
        self.plain = frozenset(b.name for b in self.branches if b.name and b.tags is None and not b.tests
                               and not b.first)
        self.rest = [(b.name, b.tags, b.tests) for b in self.branches
                     if not (b.name in self.plain and b.tags is None and not b.tests and not b.first)]

    def __call__(self, context: Any) -> list[Any]:
        if not self.iter_tags:
            return []
        return list(self._positions(context) if self.positions else self._select(context))

    def _select(self, context: Any) -> Iterator[Any]:
        plain, rest = self.plain, self.rest
        for element in context.iterdescendants(*self.iter_tags):
            tag = element.tag
            if tag in plain:
                yield element
                continue
            for name, tags, tests in rest:
                if (name is not None and tag != name) or (tags is not None and tag not in tags):
                    continue
                for test in tests:
                    if not test(element, tag):
                        break
                else:
                    yield element
                    break

    def _positions(self, context: Any) -> Iterator[Any]:
        """`(path)[1]`: the first element in document order; `path[1]`: the first of each parent's children."""
        branches = self.branches
        left = sum(b.first == "all" for b in branches)
        only_firsts = left == len(branches)
        done = [False] * len(branches)
        parents: list[set[Any]] = [set() for _ in branches]
        for element in context.iterdescendants(*self.iter_tags):
            tag = element.tag
            hit = False
            for i, b in enumerate(branches):
                if done[i] or (b.name is not None and tag != b.name) or (b.tags is not None and tag not in b.tags):
                    continue
                if not all(test(element, tag) for test in b.tests):
                    continue
                if b.first == "all":
                    done[i] = True
                    left -= 1
                elif b.first == "parent":
                    parent = element.getparent()
                    if parent in parents[i]:
                        continue
                    parents[i].add(parent)
                hit = True
            if hit:
                yield element
            if only_firsts and left == 0:
                return


def compile_walk(expression: Any) -> Walk | None:
    """The walk for an lxml XPath (or its text), or None where the expression is outside the subset read."""
    try:
        return Walk(getattr(expression, "path", expression))
    except (Unsupported, re.error, etree.XPathError):
        return None


class Swap:
    """Where a stand-in replaces one of trafilatura's objects: a list and its index, or a module (or class) and
    its attribute. `swapped` puts it in place."""

    def __init__(self, holder: Any, key: Any, original: Any, walk: Any) -> None:
        self.holder, self.key, self.original, self.walk = holder, key, original, walk
        self.depth = 0  # `with swapped(...)` blocks open over this swap

    def put(self, value: Any) -> None:
        if isinstance(self.holder, list):
            self.holder[self.key] = value
        else:
            setattr(self.holder, self.key, value)


@contextmanager
def swapped(swaps: list[Swap]) -> Iterator[None]:
    """Each swap's stand-in in place for the `with` block only (nested blocks: until the outermost ends), so
    trafilatura called elsewhere in the process (a benchmark's baseline) runs as shipped."""
    for swap in swaps:
        if swap.depth == 0:
            swap.put(swap.walk)
        swap.depth += 1
    try:
        yield
    finally:
        for swap in swaps:
            swap.depth -= 1
            if swap.depth == 0:
                swap.put(swap.original)


_SWAPS: list[Swap] | None = None


def swaps() -> list[Swap]:
    """trafilatura's `re:test` expressions this module compiles: those in its lists in trafilatura.xpaths (in
    place, so every module that imported a list sees the walk) and the baseline's cleaning expression."""
    global _SWAPS
    if _SWAPS is None:
        import sys

        import trafilatura.baseline  # noqa: F401 - the package's `baseline` attribute is a function
        import trafilatura.xpaths as xpaths

        found = []
        for name in sorted(dir(xpaths)):
            held = getattr(xpaths, name)
            if isinstance(held, list):
                found += [(held, i, e) for i, e in enumerate(held)]
        baseline = sys.modules["trafilatura.baseline"]
        found.append((baseline, "BASIC_CLEAN_XPATH", getattr(baseline, "BASIC_CLEAN_XPATH", None)))
        _SWAPS = []
        for holder, key, expression in found:
            if isinstance(expression, etree.XPath) and any(f in expression.path for f in COSTLY):
                walk = compile_walk(expression)
                if walk is not None:
                    _SWAPS.append(Swap(holder, key, expression, walk))
    return _SWAPS


def installed() -> AbstractContextManager[None]:
    """trafilatura with the walks in place of its expressions, for the `with` block only."""
    return swapped(swaps())
