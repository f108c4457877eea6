"""Framework adapters: `get_adapter(framework)` gives the `Adapter` a worker process uses.

Importing this package imports no framework; each adapter imports its framework on first use.
Which adapter serves a framework is declared once, in ``harness.vocabulary.FRAMEWORKS``.
"""

from __future__ import annotations

import importlib

from harness.errors import ConfigError
from harness.vocabulary import FRAMEWORK_NAMES, FRAMEWORKS
from harness.worker.adapters.base import Adapter, NotDifferentiable

ADAPTER_FRAMEWORKS = FRAMEWORK_NAMES


def get_adapter(framework: str) -> Adapter:
    """A fresh adapter for `framework` (one of ``vocabulary.FRAMEWORK_NAMES``)."""
    known = FRAMEWORKS.get(framework)
    if known is None:
        raise ConfigError(f"no adapter for framework {framework!r}; known: "
                          f"{', '.join(FRAMEWORK_NAMES)}")
    module, _, cls = known.adapter.partition(":")
    adapter: Adapter = getattr(importlib.import_module(module), cls)()
    return adapter


__all__ = ["ADAPTER_FRAMEWORKS", "Adapter", "NotDifferentiable", "get_adapter"]
