"""JAX and Optax built-ins: plain (op-by-op dispatch) and ``@jit``.

JAX is imported inside each function; ``@jit`` is ``jax.jit(fn)`` built on the first call. The
axis is always passed: ``jax.nn.logsumexp`` reduces over everything by default. ``jax.nn.softmax``
is deliberately not jitted inside JAX (``log_softmax`` is), so plain and ``@jit`` may differ.
The JAX adapter turns ``jax_enable_x64`` on, or float64 would silently run in float32. Optax
entries are listed only when optax is installed (found without importing it).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES
from harness.worker.impls import with_modes

DEVICES = ("cpu", "cuda")


def jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    import jax

    return jax.jit(fn)


MODES = {"jit": jit}


def softmax(x: Any) -> Any:
    import jax

    return jax.nn.softmax(x, axis=-1)


def log_softmax(x: Any) -> Any:
    import jax

    return jax.nn.log_softmax(x, axis=-1)


def logsumexp(x: Any) -> Any:
    import jax

    return jax.nn.logsumexp(x, axis=-1)


def optax_softmax_cross_entropy(x: Any, labels: Any) -> Any:
    import optax

    return optax.softmax_cross_entropy(logits=x, labels=labels)


def optax_safe_softmax_cross_entropy(x: Any, labels: Any) -> Any:
    import optax

    return optax.safe_softmax_cross_entropy(logits=x, labels=labels)


def optax_softmax_cross_entropy_with_integer_labels(x: Any, labels: Any) -> Any:
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(logits=x, labels=labels)


def composed_pick(x: Any, labels: Any) -> Any:
    import jax
    import jax.numpy as jnp

    log_p = jnp.log(jax.nn.softmax(x, axis=-1))
    return -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


def composed_dot(x: Any, labels: Any) -> Any:
    import jax
    import jax.numpy as jnp

    return -jnp.sum(labels * jnp.log(jax.nn.softmax(x, axis=-1)), axis=-1)


def implementations() -> list[Implementation]:
    def entry(name: str, op: str, fn: Callable[..., Any], description: str
              ) -> list[Implementation]:
        return with_modes(name, op, "jax", fn, modes=MODES, dtypes=DTYPE_NAMES, devices=DEVICES,
                          description=description)

    impls = [
        *entry("jax.nn.softmax", "softmax", softmax,
               "jax.nn.softmax(x, axis=-1): exp(x - max) / sum, not jitted inside JAX"),
        *entry("jax.nn.log_softmax", "log_softmax", log_softmax,
               "jax.nn.log_softmax(x, axis=-1): (x - max) - log(sum(exp(x - max)))"),
        *entry("jax.nn.logsumexp", "logsumexp", logsumexp,
               "jax.nn.logsumexp(x, axis=-1) (= jax.scipy.special.logsumexp)"),
        *entry("jax.composed_softmax_log_pick", "sparse_softmax_cross_entropy", composed_pick,
               "-take_along_axis(jnp.log(jax.nn.softmax(x)), t): composed, unfused"),
        *entry("jax.composed_softmax_log_dot", "softmax_cross_entropy", composed_dot,
               "-jnp.sum(y * jnp.log(jax.nn.softmax(x)), -1): composed, unfused"),
    ]
    if importlib.util.find_spec("optax") is not None:  # found, not imported
        impls += [
            *entry("optax.softmax_cross_entropy", "softmax_cross_entropy",
                   optax_softmax_cross_entropy,
                   "optax.softmax_cross_entropy(logits=x, labels=y): -sum(y * log_softmax(x))"),
            *entry("optax.safe_softmax_cross_entropy", "softmax_cross_entropy",
                   optax_safe_softmax_cross_entropy,
                   "optax.safe_softmax_cross_entropy(logits=x, labels=y): 0 * log 0 = 0"),
            *entry("optax.softmax_cross_entropy_with_integer_labels",
                   "sparse_softmax_cross_entropy",
                   optax_softmax_cross_entropy_with_integer_labels,
                   "optax.softmax_cross_entropy_with_integer_labels(logits=x, labels=t): "
                   "logsumexp(x) - x[t]"),
        ]
    return impls
