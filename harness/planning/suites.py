"""Suites: which case families, parameters, dtypes and ops a run covers.

A suite is a built-in name (``quick``, ``stability``, ``full``, ``throughput``; data in
:mod:`harness.planning.suite_data`) or a TOML file in the schema of docs/suites.md. ``kind =
"throughput"`` makes a timing suite: shapes, dtypes and ops to time (docs/throughput.md)
instead of case families to score. Both go through the
same validation; a mistake in a file raises :class:`~harness.errors.ConfigError` with one line,
``FILE:LINE: KEY: what is wrong; what is expected``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import ConfigError
from harness.ops import OPS
from harness.planning.cases import DTYPE_NAMES, FAMILIES, NOT_GENERATED, Family, Param
from harness.planning.suite_data import BUILTIN
from harness.worker.timing import THROUGHPUT_OPS

BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTIN)

KeyPath = tuple[str | int, ...]  # a key path in the suite document: ("cases", 2, "dtypes")


@dataclass(frozen=True)
class SuiteEntry:
    """One family with its parameters (lists give one case per value), dtypes and ops.

    Empty ``dtypes`` or ``ops`` mean the family's own (all it applies to). ``rows``: cases with
    fewer rows get ordinary rows appended up to this many (:func:`harness.planning.cases.pad_rows`).
    """

    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    rows: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


@dataclass(frozen=True)
class Suite:
    """A named, ordered list of entries; ``source`` is "builtin" or the file it came from.

    ``kind`` is "accuracy" (case families, scored) or "throughput" (entries of family
    "throughput" whose ``params["shape"]`` holds (N, C) pairs, timed with the ``timing``
    options; see harness.throughput).
    """

    name: str
    description: str
    entries: tuple[SuiteEntry, ...]
    source: str = "builtin"
    kind: str = "accuracy"
    timing: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timing", MappingProxyType(dict(self.timing)))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def get_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a suite file (``*.toml``) by path."""
    if name_or_path in BUILTIN:
        return builtin_suite(name_or_path)
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or "/" in name_or_path or path.exists():
        return load_suite_file(path, shown=name_or_path)
    raise ConfigError(
        f"unknown suite {name_or_path!r}; expected one of {', '.join(BUILTIN_NAMES)}, "
        "or a path to a .toml suite file"
    )


@cache
def builtin_suite(name: str) -> Suite:
    """One of the built-in suites (validated like a file)."""
    data = BUILTIN[name]
    try:
        return _suite(data, default_name=name, source="builtin")
    except _SchemaError as exc:  # a bug in harness.planning.suite_data, caught by the tests
        raise ConfigError(f"built-in suite {name}: {_dotted(exc.path)}: {exc.message}") from None


def load_suite_file(path: str | Path, shown: str | None = None) -> Suite:
    """Read and validate a TOML suite file; errors name ``shown`` (default: the path)."""
    where = shown if shown is not None else str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read suite file {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read suite file {where}: not UTF-8 ({exc.reason})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(where, text, exc)) from None
    try:
        return _suite(data, default_name=Path(path).stem, source=where)
    except _SchemaError as exc:
        line = _KeyLines(text).line_of(exc.path)
        raise ConfigError(f"{where}:{line}: {_dotted(exc.path)}: {exc.message}") from None


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

TOP_KEYS = ("name", "description", "kind", "include", "timing", "cases")
KINDS = ("accuracy", "throughput")
THROUGHPUT_FAMILY = "throughput"
THROUGHPUT_ENTRY_KEYS = ("family", "dtypes", "ops", "params")
THROUGHPUT_DTYPES = ("float32", "bfloat16", "float16", "float64")  # default order: float32 first
# [timing] keys of a throughput suite: (kind, minimum, meaning); harness.worker.timing.TimingOptions
TIMING_KEYS: dict[str, tuple[str, float | None, str]] = {
    "max_time": ("number", 0.0, "seconds of rounds to aim for (pytest-benchmark max_time)"),
    "min_rounds": ("int", 1, "rounds at least (pytest-benchmark min_rounds)"),
    "min_time": ("number", 0.0, "seconds per round at least (calibration)"),
    "warmup_time": ("number", 0.0, "seconds of warm-up calls after the first call"),
    "disable_gc": ("bool", None, "garbage collector off while timing"),
    "copy_bytes": ("int", 2**20, "bytes of the copy roofline's buffer (default 256 MiB)"),
}
ENTRY_KEYS = ("family", "dtypes", "ops", "params", "rows")


class _SchemaError(Exception):
    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(document)"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _one_of(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _strings(value: Any, path: KeyPath) -> list[str]:
    """A string or a list of strings, as a list."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise _SchemaError(path, f"expected a string or a list of strings, got {_type_name(value)}")
    return items


def _suite(data: Mapping[str, Any], *, default_name: str, source: str) -> Suite:
    for key in data:
        if key not in TOP_KEYS:
            raise _SchemaError((key,), f"unknown key; expected one of {_one_of(TOP_KEYS)}")
    name = data.get("name", default_name)
    description = data.get("description", "")
    kind = data.get("kind", "accuracy")
    for key, value in (("name", name), ("description", description), ("kind", kind)):
        if not isinstance(value, str):
            raise _SchemaError((key,), f"expected a string, got {_type_name(value)}")
    if kind not in KINDS:
        raise _SchemaError(("kind",), f"unknown kind {kind!r}; expected one of {_one_of(KINDS)}")
    timing: dict[str, Any] = {}
    entries: list[SuiteEntry] = []
    for included in _strings(data.get("include", []), ("include",)):
        if included not in BUILTIN:
            raise _SchemaError(("include",), f"unknown suite {included!r}; expected one of "
                                             f"{_one_of(BUILTIN_NAMES)}")
        other = builtin_suite(included)
        if other.kind != kind:
            raise _SchemaError(("include",), f"suite {included!r} is a {other.kind} suite; a "
                                             f"{kind} suite can only include {kind} suites")
        entries.extend(other.entries)
        timing.update(other.timing)
    if "timing" in data:
        if kind != "throughput":
            raise _SchemaError(("timing",), 'timing options belong to throughput suites; add '
                                            'kind = "throughput"')
        timing.update(_timing(data["timing"]))
    cases = data.get("cases", [])
    if not isinstance(cases, list):
        raise _SchemaError(("cases",), "expected an array of tables ([[cases]])")
    for i, raw in enumerate(cases):
        if not isinstance(raw, dict):
            raise _SchemaError(("cases", i), f"expected a table, got {_type_name(raw)}")
        if kind == "throughput":
            entries.append(_throughput_entry(raw, ("cases", i)))
        else:
            entries.append(_entry(raw, ("cases", i)))
    if not entries:
        raise _SchemaError(("cases",), "the suite has no cases; add [[cases]] tables or include")
    return Suite(name, description, tuple(entries), source, kind, timing)


def _timing(raw: Any) -> dict[str, Any]:
    """The [timing] table of a throughput suite."""
    if not isinstance(raw, dict):
        raise _SchemaError(("timing",), f"expected a table, got {_type_name(raw)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in TIMING_KEYS:
            raise _SchemaError(("timing", key), f"unknown key; expected one of "
                                                f"{_one_of(TIMING_KEYS)}")
        kind, minimum, _ = TIMING_KEYS[key]
        if kind == "bool":
            ok = isinstance(value, bool)
        else:
            numeric = int if kind == "int" else (int, float)
            ok = (isinstance(value, numeric) and not isinstance(value, bool)
                  and math.isfinite(value) and (minimum is None or value >= minimum))
        if not ok:
            want = {"bool": "a boolean", "int": f"an integer >= {int(minimum or 0)}",
                    "number": f"a number >= {minimum or 0:g}"}[kind]
            raise _SchemaError(("timing", key), f"expected {want}, got {_type_name(value)} "
                                                f"{value!r}")
        out[key] = value
    return out


_SHAPE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def _shape(value: Any, path: KeyPath) -> tuple[int, int]:
    """A throughput shape: "NxC" or [N, C], both positive integers."""
    if isinstance(value, str) and (m := _SHAPE.match(value)):
        pair = (int(m.group(1)), int(m.group(2)))
    elif (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise _SchemaError(path, f'expected a shape "NxC" (e.g. "256x32000") or [N, C], got '
                                 f"{_type_name(value)} {value!r}")
    if min(pair) < 1:
        raise _SchemaError(path, f"expected rows and classes >= 1, got {pair[0]}x{pair[1]}")
    return pair


def _throughput_entry(raw: Mapping[str, Any], path: KeyPath) -> SuiteEntry:
    """One [[cases]] table of a throughput suite: shapes, dtypes and ops to time."""
    for key in raw:
        if key not in THROUGHPUT_ENTRY_KEYS:
            raise _SchemaError((*path, key), f"unknown key; expected one of "
                                             f"{_one_of(THROUGHPUT_ENTRY_KEYS)}")
    family = raw.get("family", THROUGHPUT_FAMILY)
    if family != THROUGHPUT_FAMILY:
        raise _SchemaError((*path, "family"), f"a throughput suite times family "
                                              f"{THROUGHPUT_FAMILY!r} only, not {family!r}")
    dtypes = _choices(raw.get("dtypes", list(THROUGHPUT_DTYPES)), (*path, "dtypes"), "dtype",
                      DTYPE_NAMES)
    ops = _choices(raw.get("ops", list(THROUGHPUT_OPS)), (*path, "ops"), "op", THROUGHPUT_OPS)
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise _SchemaError((*path, "params"), f"expected a table, got {_type_name(params)}")
    for key in params:
        if key != "shape":
            raise _SchemaError((*path, "params", key), "unknown parameter of family "
                                                       "'throughput'; expected shape")
    if "shape" not in params:
        raise _SchemaError((*path, "params", "shape"), 'missing; list the shapes to time, '
                                                       'e.g. shape = ["256x32000"]')
    raw_shapes = params["shape"] if isinstance(params["shape"], list) and not (
        len(params["shape"]) == 2 and all(isinstance(v, int) for v in params["shape"])
    ) else [params["shape"]]
    if not raw_shapes:
        raise _SchemaError((*path, "params", "shape"), "expected at least one shape")
    shapes = tuple(_shape(v, (*path, "params", "shape")) for v in raw_shapes)
    if len(set(shapes)) != len(shapes):
        raise _SchemaError((*path, "params", "shape"), "a shape is listed twice")
    return SuiteEntry(THROUGHPUT_FAMILY, {"shape": shapes}, tuple(dtypes), tuple(ops))


def _entry(raw: Mapping[str, Any], path: KeyPath) -> SuiteEntry:
    for key in raw:
        if key not in ENTRY_KEYS:
            raise _SchemaError((*path, key), f"unknown key; expected one of {_one_of(ENTRY_KEYS)}")
    if "family" not in raw:
        raise _SchemaError((*path, "family"), "missing; every [[cases]] table names a family")
    name = raw["family"]
    if not isinstance(name, str):
        raise _SchemaError((*path, "family"), f"expected a string, got {_type_name(name)}")
    if name in NOT_GENERATED:
        raise _SchemaError((*path, "family"),
                           f"family {name!r} is not generated here: {NOT_GENERATED[name]}")
    if name not in FAMILIES:
        raise _SchemaError((*path, "family"),
                           f"unknown family {name!r}; expected one of {_one_of(FAMILIES)}")
    family = FAMILIES[name]
    dtypes = _choices(raw.get("dtypes", list(family.dtypes)), (*path, "dtypes"), "dtype",
                      DTYPE_NAMES)
    ops = _choices(raw.get("ops", list(family.ops)), (*path, "ops"), "op", tuple(OPS))
    for op in ops:
        if op not in family.ops:
            raise _SchemaError((*path, "ops"), f"op {op!r} does not apply to family {name!r}; "
                                               f"expected one of {_one_of(family.ops)}")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise _SchemaError((*path, "params"), f"expected a table, got {_type_name(params)}")
    checked = {key: _param(family, key, value, (*path, "params", key))
               for key, value in params.items()}
    rows = raw.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise _SchemaError((*path, "rows"), f"expected an integer >= 1, got {rows!r}")
    return SuiteEntry(name, checked, tuple(dtypes), tuple(ops), rows)


def _choices(value: Any, path: KeyPath, what: str, allowed: Sequence[str]) -> list[str]:
    items = _strings(value, path)
    if not items:
        raise _SchemaError(path, f"expected at least one {what}")
    for item in items:
        if item not in allowed:
            raise _SchemaError(path, f"unknown {what} {item!r}; expected one of {_one_of(allowed)}")
    if len(set(items)) != len(items):
        raise _SchemaError(path, f"a {what} is listed twice")
    return items


def _param(family: Family, key: str, value: Any, path: KeyPath) -> Any:
    params = {p.name: p for p in family.params}
    if key not in params:
        known = f"expected one of {_one_of(params)}" if params else "it takes no parameters"
        raise _SchemaError(path, f"unknown parameter of family {family.name!r}; {known}")
    spec = params[key]
    if spec.multi:
        items = value if isinstance(value, list) else [value]
        return tuple(_param_value(spec, v, path) for v in items)
    if isinstance(value, list):
        raise _SchemaError(path, f"expected a single {_expected(spec)}, got an array")
    return _param_value(spec, value, path)


def _expected(spec: Param) -> str:
    """What a value of ``spec`` must be, in words: "number >= 0 or one of 'g_1'"."""
    text = {"number": "number", "int": "integer", "bool": "boolean", "str": "string"}[spec.kind]
    bounds = [f"{op} {bound:g}" for op, bound in ((">=", spec.minimum), ("<=", spec.maximum))
              if bound is not None]
    if bounds:
        text += " " + " and ".join(bounds)
    if spec.kind == "number" and spec.choices:
        text += f" or one of {_one_of([repr(c) for c in spec.choices])}"
    return text


def _param_value(spec: Param, value: Any, path: KeyPath) -> Any:
    ok: bool
    if spec.kind in ("number", "int"):
        numeric = int if spec.kind == "int" else (int, float)
        ok = (isinstance(value, numeric) and not isinstance(value, bool) and math.isfinite(value)
              and (spec.minimum is None or value >= spec.minimum)
              and (spec.maximum is None or value <= spec.maximum)) or (
            spec.kind == "number" and isinstance(value, str) and value in spec.choices)
    elif spec.kind == "bool":
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        expected = _expected(spec)
        article = "an" if expected[0] in "aeiou" else "a"
        raise _SchemaError(path, f"expected {article} {expected}, got {_type_name(value)} "
                                 f"{value!r}")
    if spec.choices and spec.kind in ("int", "str") and value not in spec.choices:
        raise _SchemaError(path, f"unknown value {value!r}; expected one of "
                                 f"{_one_of([repr(c) for c in spec.choices])}")
    return value


# --------------------------------------------------------------------------------------------
# Locating keys in the TOML text (tomllib reports positions for syntax errors only)
# --------------------------------------------------------------------------------------------

_BARE_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_DOTTED = rf"{_BARE_KEY}(?:\s*\.\s*{_BARE_KEY})*"
_ARRAY_HEADER = re.compile(rf"^\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\[\s*({_DOTTED})\s*\]")
_KEY_VALUE = re.compile(rf"^({_DOTTED})\s*=\s*(.*)$")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_BARE_KEY})\s*=")


def _split_key(dotted: str) -> list[str]:
    parts = re.findall(_BARE_KEY, dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _code(line: str) -> str:
    """The line without its comment (a '#' outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _depth(text: str) -> int:
    """Net count of open brackets outside strings."""
    depth, quote = 0, ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


class _KeyLines:
    """The line of every key, table and array-of-tables element of a TOML document."""

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        counts: dict[tuple[str, ...], int] = {}
        table: KeyPath = ()
        open_brackets = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            code = _code(raw).strip()
            if open_brackets > 0:  # inside a multi-line array or inline table
                open_brackets += _depth(code)
                continue
            if not code:
                continue
            if m := _ARRAY_HEADER.match(code):
                names = tuple(_split_key(m.group(1)))
                counts[names] = counts.get(names, -1) + 1
                table = (*self._resolve(names[:-1], counts), names[-1], counts[names])
                self._record(table, number)
            elif m := _TABLE_HEADER.match(code):
                table = self._resolve(tuple(_split_key(m.group(1))), counts)
                self._record(table, number)
            elif m := _KEY_VALUE.match(code):
                key = (*table, *_split_key(m.group(1)))
                self._record(key, number)
                for inner in _INLINE_KEY.finditer(m.group(2)):
                    self._record((*key, *_split_key(inner.group(1))), number)
                open_brackets = max(_depth(m.group(2)), 0)
        self.table = table  # the table open at the end of the text

    @staticmethod
    def _resolve(names: tuple[str, ...], counts: Mapping[tuple[str, ...], int]) -> KeyPath:
        """A header's names as a path, with the current index of each array of tables."""
        path: list[str | int] = []
        for i, name in enumerate(names):
            path.append(name)
            if names[: i + 1] in counts:
                path.append(counts[names[: i + 1]])
        return tuple(path)

    def _record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def line_of(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest recorded ancestor (1 for the document)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_END = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_message(where: str, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """``FILE:LINE: KEY: invalid TOML: ...`` from tomllib's message (KEY: best effort)."""
    lines = text.splitlines()
    message = str(exc)
    line, column = max(len(lines), 1), 0
    if m := _POSITION.search(message):
        line, column = int(m.group(1)), int(m.group(2))
        message = message[: m.start()]
    elif m := _END.search(message):
        message = message[: m.start()] + " at the end of the file"
    table = _KeyLines("\n".join(lines[: line - 1])).table
    here = _code(lines[line - 1]).strip() if 0 < line <= len(lines) else ""
    if m := _KEY_VALUE.match(here):
        name = _dotted((*table, *_split_key(m.group(1))))
    elif m := (_ARRAY_HEADER.match(here) or _TABLE_HEADER.match(here)):
        name = m.group(1)
    else:
        name = _dotted(table)
    detail = f" (column {column})" if column else ""
    return f"{where}:{line}: {name}: invalid TOML: {message}{detail}"
