"""Which frameworks are installed, found without importing them.

The parent process never imports torch, TensorFlow or JAX (importing them is slow, grabs devices
and threads, and can crash): it only asks the import system whether the module can be found and
the package metadata which version is installed.
"""

import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec

from harness.vocabulary import FRAMEWORK_LIST, Framework


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
    """Availability of every known framework, in the order of `vocabulary.FRAMEWORK_LIST`."""
    return [
        framework_status(fw, find_spec=find_spec, dist_version=dist_version)
        for fw in FRAMEWORK_LIST
    ]
