"""The implementation registry: built-ins and third-party plugins.

An ``Implementation`` wraps one public API call as a user writes it. Its ``fn`` takes the
framework's own tensors (already on the device) and returns the framework's own tensor; the
framework adapter does conversion, placement, synchronisation and autodiff, outside any timed
region. Third-party packages register through the entry-point group ``softmax_bench.plugins``:
each entry point is a callable with no arguments returning an iterable of ``Implementation``.
A malformed plugin is rejected with an error naming it, and the others still load.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from harness.errors import ConfigError, PluginError, UsageError
from harness.frameworks import find_framework
from harness.messages import ImplInfo
from harness.vocabulary import CROSS_ENTROPY_OPTIONS, DEVICES, DTYPE_NAMES, FRAMEWORKS, OP_NAMES

ENTRY_POINT_GROUP = "softmax_bench.plugins"
# Ad-hoc functions (``softmax-bench run --fn MODULE:FUNCTION``, ``verify(isolated=True)``): the
# parent names them to its workers in this environment variable (JSON, see ``FnSpec``).
FN_ENV = "SOFTMAX_BENCH_FN"
FN_SOURCE = "--fn"


@dataclass(frozen=True)
class Implementation:
    """One implementation of one op in one framework (and execution mode, in the name)."""

    name: str
    op: str
    framework: str
    fn: Callable[..., Any]
    dtypes: tuple[str, ...] = DTYPE_NAMES
    devices: tuple[str, ...] = ("cpu",)
    description: str = ""
    options: frozenset[str] = field(default_factory=frozenset)  # cross_entropy extras supported
    differentiable: bool = True  # backward pass through the framework's autodiff
    source: str = "builtin"  # or the plugin's entry-point name

    def validate(self) -> None:
        """Raise PluginError naming the problem if this registration is malformed."""
        problems = []
        if not isinstance(self.name, str) or not self.name:
            problems.append("name must be a non-empty string")
        if self.op not in OP_NAMES:
            problems.append(f"op {self.op!r} is not one of {', '.join(OP_NAMES)}")
        if not isinstance(self.framework, str) or not self.framework:
            problems.append("framework must be a non-empty string")
        if not callable(self.fn):
            problems.append("fn must be callable")
        bad_dtypes = [d for d in self.dtypes if d not in DTYPE_NAMES]
        if bad_dtypes:
            problems.append(f"unknown dtypes {bad_dtypes}")
        bad_devices = [d for d in self.devices if d not in DEVICES]
        if bad_devices:
            problems.append(f"unknown devices {bad_devices}")
        if not set(self.options) <= CROSS_ENTROPY_OPTIONS:
            problems.append(f"unknown options {sorted(set(self.options) - CROSS_ENTROPY_OPTIONS)}")
        if problems:
            raise PluginError(f"implementation {self.name!r} from {self.source}: "
                              + "; ".join(problems))


@dataclass(frozen=True)
class LoadResult:
    implementations: tuple[Implementation, ...]
    errors: tuple[str, ...]  # one line per rejected plugin or registration


def _collect(source: str, produce: Callable[[], Iterable[Any]]) -> tuple[list[Implementation],
                                                                           list[str]]:
    try:
        items = list(produce())
    except Exception as exc:  # a plugin's own failure must not stop the others
        return [], [f"plugin {source}: raised {type(exc).__name__}: {exc}"]
    good, errors = [], []
    for item in items:
        if not isinstance(item, Implementation):
            errors.append(f"plugin {source}: returned {type(item).__name__}, "
                          "not harness.Implementation")
            continue
        impl = item if item.source != "builtin" or source == "builtin" else \
            Implementation(**{**item.__dict__, "source": source})
        try:
            impl.validate()
        except PluginError as exc:
            errors.append(str(exc))
            continue
        good.append(impl)
    return good, errors


def builtin_implementations(framework: str) -> list[Implementation]:
    """A framework's built-ins (imports the framework: call this in a worker only)."""
    module = importlib.import_module(FRAMEWORKS[framework].builtins)
    return list(module.implementations())


def framework_implementations(framework: str) -> LoadResult:
    """The implementations of a framework, built-in or added by an adapter plugin (whose
    ``implementations()`` is checked like any plugin's: validated, and of its own framework)."""
    if framework in FRAMEWORKS:
        return LoadResult(tuple(builtin_implementations(framework)), ())
    known = find_framework(framework)
    if known is None:
        return LoadResult((), (f"framework {framework}: no such framework",))
    try:
        produce = importlib.import_module(known.builtins).implementations
    except Exception as exc:
        return LoadResult((), (f"adapter plugin {known.source}: cannot load "
                               f"{known.builtins}.implementations: {type(exc).__name__}: "
                               f"{exc}",))
    good, errors = _collect(known.source, produce)
    own = [i for i in good if i.framework == framework]
    errors += [f"adapter plugin {known.source}: implementation {i.name!r} is of framework "
               f"{i.framework!r}, not {framework!r}" for i in good if i.framework != framework]
    return LoadResult(tuple(Implementation(**{**i.__dict__, "source": known.source})
                            for i in own), tuple(errors))


# -- ad-hoc functions (--fn MODULE:FUNCTION) ---------------------------------------------------

_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@dataclass(frozen=True)
class FnSpec:
    """A function named ``MODULE:FUNCTION`` (FUNCTION may be dotted: ``Class.method``), scored
    as an implementation of ``op`` in ``framework``; ``path``: a directory to import MODULE
    from (put first on ``sys.path``), else the current directory and PYTHONPATH."""

    target: str
    op: str
    framework: str = "numpy"
    path: str | None = None

    def __post_init__(self) -> None:
        check_fn_target(self.target)
        if self.op not in OP_NAMES:
            raise UsageError(f"--op {self.op!r}: unknown op; expected one of "
                             f"{', '.join(OP_NAMES)}")

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "op": self.op, "framework": self.framework,
                "path": self.path}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FnSpec:
        return cls(str(data["target"]), str(data["op"]), str(data.get("framework") or "numpy"),
                   data.get("path"))


def check_fn_target(target: str) -> str:
    """``target`` if it reads MODULE:FUNCTION, else a UsageError saying so."""
    if not isinstance(target, str) or not _TARGET.match(target):
        raise UsageError(f"--fn {target!r}: expected MODULE:FUNCTION, e.g. mymodule:my_softmax")
    return target


def encode_fn_specs(specs: Sequence[FnSpec]) -> str:
    return json.dumps([s.to_json() for s in specs])


def fn_specs_from_env(environ: Mapping[str, str] | None = None) -> list[FnSpec]:
    text = (os.environ if environ is None else environ).get(FN_ENV, "")
    return [FnSpec.from_json(item) for item in json.loads(text)] if text.strip() else []


def load_fn(spec: FnSpec) -> Callable[..., Any]:
    """Import ``spec.target``; a PluginError (one line) says why it cannot be."""
    module_name, _, attr = spec.target.partition(":")
    if spec.path and spec.path not in sys.path:
        sys.path.insert(0, spec.path)
    elif "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # MODULE from the current directory
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise PluginError(f"--fn {spec.target}: cannot import {module_name}: "
                          f"{type(exc).__name__}: {text}"[:500]) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"--fn {spec.target}: module {module_name} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PluginError(f"--fn {spec.target}: {attr} is not callable")
    fn: Callable[..., Any] = obj
    return fn


def fn_implementation(spec: FnSpec, fn: Callable[..., Any]) -> Implementation:
    """The implementation an ad-hoc function is scored as: every dtype and device; its name in
    the records is ``MODULE:FUNCTION``."""
    return Implementation(spec.target, spec.op, spec.framework, fn, dtypes=DTYPE_NAMES,
                          devices=DEVICES, description=f"ad-hoc function {spec.target} (--fn)",
                          source=FN_SOURCE)


def fn_implementations(environ: Mapping[str, str] | None = None) -> LoadResult:
    """The ad-hoc functions the parent named in ``FN_ENV``; import errors collected."""
    found: list[Implementation] = []
    errors: list[str] = []
    try:
        specs = fn_specs_from_env(environ)
    except (ValueError, KeyError, TypeError, PluginError) as exc:
        return LoadResult((), (f"{FN_ENV}: {exc}",))
    for spec in specs:
        try:
            impl = fn_implementation(spec, load_fn(spec))
            impl.validate()
        except PluginError as exc:
            errors.append(str(exc))
            continue
        found.append(impl)
    return LoadResult(tuple(found), tuple(errors))


def fn_info(spec: FnSpec) -> ImplInfo:
    """What the parent knows of an ad-hoc function without importing it."""
    return ImplInfo(spec.target, spec.op, spec.framework, DTYPE_NAMES, DEVICES,
                    f"ad-hoc function {spec.target} (--fn)", (), True, FN_SOURCE)


def plugin_entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> LoadResult:
    """Every third-party implementation; errors are collected, never raised."""
    found: list[Implementation] = []
    errors: list[str] = []
    for ep in plugin_entry_points():
        try:
            factory = ep.load()
        except Exception as exc:
            errors.append(f"plugin {ep.name}: cannot load {ep.value}: {type(exc).__name__}: {exc}")
            continue
        if not callable(factory):
            errors.append(f"plugin {ep.name}: {ep.value} is not callable")
            continue
        good, bad = _collect(ep.name, factory)
        found.extend(Implementation(**{**i.__dict__, "source": ep.name}) for i in good)
        errors.extend(bad)
    names = [i.name for i in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        errors.append(f"duplicate implementation names from plugins: {sorted(duplicates)}")
    return LoadResult(tuple(found), tuple(errors))


def select(names: Iterable[str], include: list[str], exclude: list[str]) -> list[str]:
    """Names matching any --impl glob (all when none) and no --exclude glob."""
    chosen = [n for n in names if not include or any(fnmatch.fnmatchcase(n, p) for p in include)]
    return [n for n in chosen if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]


def choose(implementations: Iterable[ImplInfo], device: str, include: Iterable[str],
           exclude: Iterable[str]) -> list[ImplInfo]:
    """The implementations (``harness.messages.ImplInfo``) on ``device`` that the --impl/--exclude
    globs select, in catalogue order. A --impl glob that matches nothing, or an empty selection,
    is a ConfigError (bad user input, one line)."""
    impls = [i for i in implementations if device in i.devices]
    all_names = [i.name for i in impls]
    for pattern in include:
        if not select(all_names, [pattern], []):
            raise ConfigError(f"--impl {pattern!r} matches no implementation; "
                              "see 'softmax-bench list'")
    names = set(select(all_names, list(include), list(exclude)))
    chosen = [i for i in impls if i.name in names]
    if not chosen:
        raise ConfigError("no implementation left after --impl/--exclude")
    return chosen
