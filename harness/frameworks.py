"""Which frameworks are installed, found without importing them; and the frameworks plugins add.

The parent process never imports torch, TensorFlow or JAX (importing them is slow, grabs devices
and threads, and can crash): it only asks the import system whether the module can be found and
the package metadata which version is installed.

Built-in frameworks are declared in ``harness.vocabulary.FRAMEWORK_LIST``. A third party adds a
whole framework through the entry-point group ``softmax_bench.adapters``: the entry point's name
is the framework's name, its value an ``Adapter`` subclass (``harness.worker.adapters.base``)
with the class attributes ``module`` (the framework's import name), ``install_hint`` and,
optionally, ``distributions`` (where its version is read; default ``(module,)``) and
``implementations_module`` (the module whose ``implementations()`` lists the framework's
implementations; default the adapter's own module). Loading the class imports the plugin's
adapter module, never the framework (adapters import it on first use, as the built-ins do). A
plugin that cannot be loaded is an unavailable framework with the reason; it never breaks
``list`` or ``run``.
"""

import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec

from harness.vocabulary import ADAPTER_ENTRY_POINT_GROUP, FRAMEWORK_LIST, FRAMEWORKS, Framework


@dataclass(frozen=True)
class PluginFrameworks:
    """The frameworks of the ``softmax_bench.adapters`` entry points, and the broken ones:
    ``errors`` maps a framework name to why its adapter plugin cannot be used."""

    frameworks: tuple[Framework, ...]
    errors: dict[str, str]


def adapter_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed ``softmax_bench.adapters`` entry points (a seam for tests)."""
    return list(importlib.metadata.entry_points(group=ADAPTER_ENTRY_POINT_GROUP))


def _plugin_framework(ep: importlib.metadata.EntryPoint) -> Framework:
    if ep.name in FRAMEWORKS:
        raise ValueError(f"the name {ep.name!r} is a built-in framework's")
    if ":" not in ep.value:
        raise ValueError(f"{ep.value!r} is not 'module:AdapterClass'")
    cls = ep.load()
    if not isinstance(cls, type):
        raise TypeError(f"{ep.value} is not a class")
    missing = [m for m in ("availability", "to_framework", "to_numpy", "forward", "backward")
               if not callable(getattr(cls, m, None))]
    if missing:  # (duck-typed: importing the Adapter base here would be an import cycle)
        raise TypeError(f"{ep.value} is not a harness.worker.adapters.base.Adapter subclass "
                        f"(no {', '.join(missing)})")
    module = getattr(cls, "module", None)
    if not isinstance(module, str) or not module:
        raise TypeError(f"{ep.value} has no 'module' attribute (the framework's import name)")
    serves = getattr(cls, "framework", ep.name)
    if serves != ep.name:
        raise ValueError(f"{ep.value} serves framework {serves!r}, not {ep.name!r}")
    distributions = tuple(getattr(cls, "distributions", None) or (module,))
    hint = getattr(cls, "install_hint", None)
    builtins = getattr(cls, "implementations_module", None) or cls.__module__
    dist = getattr(ep, "dist", None)
    source = f"{dist.name} ({ep.name})" if dist is not None else ep.name
    return Framework(ep.name, module, distributions, None, ep.value, builtins, source=source,
                     install=hint if isinstance(hint, str) and hint else None)


def plugin_frameworks() -> PluginFrameworks:
    """Every framework a ``softmax_bench.adapters`` entry point adds (first one of a name wins)."""
    found: dict[str, Framework] = {}
    errors: dict[str, str] = {}
    for ep in adapter_entry_points():
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path
        try:
            found[ep.name] = _plugin_framework(ep)
        except Exception as exc:  # a broken plugin must not break the others, list or run
            text = " ".join(str(exc).split())
            errors.setdefault(ep.name, f"adapter plugin {ep.name} ({ep.value}) cannot be used: "
                                       f"{type(exc).__name__}: {text}"[:500])
    return PluginFrameworks(tuple(found.values()), errors)


def all_frameworks() -> tuple[Framework, ...]:
    """The built-in frameworks, then those plugins add (broken plugins left out)."""
    return (*FRAMEWORK_LIST, *plugin_frameworks().frameworks)


def find_framework(name: str) -> Framework | None:
    """A framework by name, built-in or plugin (None when there is none of that name)."""
    if name in FRAMEWORKS:
        return FRAMEWORKS[name]
    return next((f for f in plugin_frameworks().frameworks if f.name == name), None)


@dataclass(frozen=True)
class FrameworkStatus:
    """Whether one framework can be used here; `reason` says why not (empty when it can)."""

    name: str
    available: bool
    version: str | None
    reason: str



FindSpec = Callable[[str], ModuleSpec | None]
DistVersion = Callable[[str], str]


def _installed_version(framework: Framework, dist_version: DistVersion) -> str | None:
    for dist in framework.distributions:
        try:
            return dist_version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def framework_status(
    framework: Framework,
    *,
    find_spec: FindSpec = importlib.util.find_spec,
    dist_version: DistVersion = importlib.metadata.version,
) -> FrameworkStatus:
    """Availability of `framework`; `find_spec` and `dist_version` are seams for tests."""
    try:
        spec = find_spec(framework.module)
    except (ImportError, ValueError) as exc:  # a broken install can raise from find_spec
        return FrameworkStatus(framework.name, False, None, f"cannot be located: {exc}")
    if spec is None:
        return FrameworkStatus(
            framework.name, False, None, f"not installed: {framework.install_hint}"
        )
    version = _installed_version(framework, dist_version)
    if version is None:
        # Importable but with no package metadata, e.g. a source tree on sys.path.
        return FrameworkStatus(framework.name, True, None, "version unknown: no package metadata")
    return FrameworkStatus(framework.name, True, version, "")


def framework_statuses(
    *,
    find_spec: FindSpec = importlib.util.find_spec,
    dist_version: DistVersion = importlib.metadata.version,
) -> list[FrameworkStatus]:
    """Availability of every known framework: the built-ins in the order of
    `vocabulary.FRAMEWORK_LIST`, then the plugins' (a broken plugin: unavailable, with why)."""
    plugins = plugin_frameworks()
    return [
        framework_status(fw, find_spec=find_spec, dist_version=dist_version)
        for fw in (*FRAMEWORK_LIST, *plugins.frameworks)
    ] + [FrameworkStatus(name, False, None, reason) for name, reason in plugins.errors.items()
         if name not in FRAMEWORKS]  # a clash with a built-in is a warning (catalog errors)
