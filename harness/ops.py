"""The ops the harness measures, their inputs, and the reference that judges each pass.

Class axis last; losses are per row (no reduction) except ``cross_entropy``, which has
PyTorch's semantics and options (weight, ignore_index, label_smoothing, reduction).
Backward passes are vector-Jacobian products with respect to the logits: the cotangent is a
seeded random array for softmax and log_softmax, ones for per-row outputs (docs/numerics.md §4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import references
from harness.vocabulary import BACKWARD, CROSS_ENTROPY_OPTIONS, FORWARD, PASSES


@dataclass(frozen=True)
class OpSpec:
    name: str
    inputs: tuple[str, ...]  # "x" logits; "labels" dense float; "targets" int class indices
    per_row: bool  # output has the class axis removed
    forward: Callable[..., references.ReferenceResult]
    backward: Callable[..., references.ReferenceResult]
    random_cotangent: bool  # backward cotangent: seeded random (True) or ones (False)

    def reference_call(self, pass_: str, inputs: dict[str, np.ndarray],
                       cotangent: np.ndarray | None, options: dict[str, Any]
                       ) -> tuple[Callable[..., references.ReferenceResult], list[Any],
                                  dict[str, Any]]:
        """The reference function of one pass, and its arguments: what ``reference`` calls,
        for a caller that calls it elsewhere (``references.pool`` in another process)."""
        args = [inputs[name] for name in self.inputs]
        if pass_ == FORWARD:
            return self.forward, args, dict(options)
        if self.random_cotangent:
            return self.backward, [args[0], cotangent], {}
        return self.backward, args, dict(options)

    def reference(self, pass_: str, inputs: dict[str, np.ndarray], cotangent: np.ndarray | None,
                  options: dict[str, Any]) -> references.ReferenceResult:
        """The exact answer for one pass on these (already dtype-rounded) inputs."""
        fn, args, kwargs = self.reference_call(pass_, inputs, cotangent, options)
        return fn(*args, **kwargs)


OPS: dict[str, OpSpec] = {
    "softmax": OpSpec("softmax", ("x",), False, references.softmax, references.softmax_vjp,
                      True),
    "log_softmax": OpSpec("log_softmax", ("x",), False, references.log_softmax,
                          references.log_softmax_vjp, True),
    "logsumexp": OpSpec("logsumexp", ("x",), True, references.logsumexp,
                        references.logsumexp_grad, False),
    "softmax_cross_entropy": OpSpec("softmax_cross_entropy", ("x", "labels"), True,
                                    references.softmax_cross_entropy,
                                    references.softmax_cross_entropy_grad, False),
    "sparse_softmax_cross_entropy": OpSpec("sparse_softmax_cross_entropy", ("x", "targets"),
                                           True, references.sparse_softmax_cross_entropy,
                                           references.sparse_softmax_cross_entropy_grad, False),
    "cross_entropy": OpSpec("cross_entropy", ("x", "targets"), True, references.cross_entropy,
                            references.cross_entropy_grad, False),
}

__all__ = ["BACKWARD", "CROSS_ENTROPY_OPTIONS", "FORWARD", "OPS", "PASSES", "OpSpec"]
