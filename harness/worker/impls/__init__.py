"""Built-in implementations, one module per framework, each with ``implementations()``.

Listing imports no framework: every ``fn`` imports its framework when first called, and
compiled variants (``torch.compile``, ``tf.function``, ``jax.jit``) are built on first call and
cached by :class:`CompiledFn`, so the parent process can list all built-ins cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES

EAGER = "eager"


class CompiledFn:
    """A framework function plus the compiled variant built from it on the first call.

    `mode` names the execution mode ("compile", "function", "xla", "jit"); adapters read it
    (and `eager`) to compile the backward pass the same way, e.g. a tape inside the
    `tf.function`. `built` says whether the first (compiling) call has happened, so a runner can
    time compilation apart from steady-state calls.
    """

    def __init__(self, eager: Callable[..., Any], mode: str,
                 compile_: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.eager = eager
        self.mode = mode
        self._compile = compile_
        self._compiled: Callable[..., Any] | None = None

    @property
    def built(self) -> bool:
        return self._compiled is not None

    def compiled(self) -> Callable[..., Any]:
        if self._compiled is None:
            self._compiled = self._compile(self.eager)
        return self._compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.compiled()(*args, **kwargs)

    def __repr__(self) -> str:
        name = getattr(self.eager, "__qualname__", repr(self.eager))
        return f"CompiledFn({name}, mode={self.mode!r}, built={self.built})"


def mode_of(fn: Callable[..., Any]) -> str:
    """The execution mode of an implementation's fn: "eager" unless it is a CompiledFn."""
    return fn.mode if isinstance(fn, CompiledFn) else EAGER


def with_modes(name: str, op: str, framework: str, fn: Callable[..., Any], *,
               modes: Mapping[str, Callable[[Callable[..., Any]], Callable[..., Any]]],
               dtypes: Iterable[str] = DTYPE_NAMES, devices: Iterable[str] = ("cpu",),
               description: str = "", options: Iterable[str] = (),
               differentiable: bool = True) -> list[Implementation]:
    """The eager implementation `name` and one `name@mode` per compiled mode."""
    common: dict[str, Any] = dict(op=op, framework=framework, dtypes=tuple(dtypes),
                                  devices=tuple(devices), options=frozenset(options),
                                  differentiable=differentiable)
    out = [Implementation(name=name, fn=fn, description=description, **common)]
    for mode, compile_ in modes.items():
        out.append(Implementation(name=f"{name}@{mode}", fn=CompiledFn(fn, mode, compile_),
                                  description=f"{description} [{mode}]", **common))
    return out


__all__ = ["EAGER", "CompiledFn", "mode_of", "with_modes"]
