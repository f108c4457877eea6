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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from harness.errors import ConfigError, PluginError
from harness.messages import ImplInfo
from harness.vocabulary import CROSS_ENTROPY_OPTIONS, DEVICES, DTYPE_NAMES, FRAMEWORKS, OP_NAMES

ENTRY_POINT_GROUP = "softmax_bench.plugins"


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
