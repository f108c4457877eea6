"""Framework adapters: `get_adapter(framework)` gives the `Adapter` a worker process uses.

Importing this package imports no framework; each adapter imports its framework on first use.
Which adapter serves a built-in framework is declared once, in ``harness.vocabulary.FRAMEWORKS``;
a plugin framework's adapter comes from its ``softmax_bench.adapters`` entry point
(``harness.frameworks``).
"""

from __future__ import annotations

import importlib

from harness.errors import ConfigError
from harness.frameworks import all_frameworks, find_framework, plugin_frameworks
from harness.vocabulary import FRAMEWORK_NAMES
from harness.worker.adapters.base import Adapter, NotDifferentiable

ADAPTER_FRAMEWORKS = FRAMEWORK_NAMES  # the built-ins


def get_adapter(framework: str) -> Adapter:
    """A fresh adapter for `framework` (a built-in of ``vocabulary.FRAMEWORK_NAMES`` or a
    plugin's)."""
    known = find_framework(framework)
    if known is None:
        broken = plugin_frameworks().errors.get(framework)
        if broken:
            raise ConfigError(broken)
        raise ConfigError(f"no adapter for framework {framework!r}; known: "
                          f"{', '.join(f.name for f in all_frameworks())}")
    module, _, cls = known.adapter.partition(":")
    adapter = getattr(importlib.import_module(module), cls)()
    if not isinstance(adapter, Adapter):
        raise ConfigError(f"{known.adapter} (framework {framework}) is not a "
                          "harness.worker.adapters.base.Adapter")
    return adapter


__all__ = ["ADAPTER_FRAMEWORKS", "Adapter", "NotDifferentiable", "get_adapter"]
