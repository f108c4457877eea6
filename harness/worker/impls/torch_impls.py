"""PyTorch built-ins: torch.nn.functional softmax family and losses, eager and ``@compile``.

torch is imported inside each function, never at listing time. ``@compile`` is
``torch.compile(fn, dynamic=False)`` built on the first call: one specialised graph per shape and
dtype, as a fixed-shape training loop gets. Dynamo's recompile limit is raised and made an error,
so a shape sweep can never fall back to eager silently (the default is 8 recompiles, then eager).
PyTorch's losses put the classes at dim 1, so inputs of rank > 2 are moved there
(docs/frameworks.md §0); losses are per row (``reduction="none"``) except op ``cross_entropy``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.ops import CROSS_ENTROPY_OPTIONS
from harness.registry import Implementation
from harness.vocabulary import DTYPE_NAMES
from harness.worker.impls import with_modes

DEVICES = ("cpu", "cuda")
HALF_DTYPES = ("float16", "bfloat16")  # the dtype=float32 variants widen these
RECOMPILE_LIMIT = 1024


def compile_(fn: Callable[..., Any]) -> Callable[..., Any]:
    import torch
    import torch._dynamo

    config = torch._dynamo.config
    # names of torch >= 2.6; an older torch keeps its defaults rather than failing every call
    if hasattr(config, "recompile_limit"):
        config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    if hasattr(config, "accumulated_recompile_limit"):
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit,
                                                 4 * RECOMPILE_LIMIT)
    if hasattr(config, "fail_on_recompile_limit_hit"):
        config.fail_on_recompile_limit_hit = True
    skip_guard_latency_profile()
    return torch.compile(fn, dynamic=False)


def skip_guard_latency_profile() -> None:
    """Dynamo times each new guard set once, after flushing the CPU caches, only to log it
    (the ``guard_latency_us`` compile metric; torch 2.13 has no switch for it). A suite
    recompiles for every shape, and the flush was half of each recompile: 240 shapes of
    ``log_softmax@compile`` with inductor's cache warm took 11.4 s with it and 6.1 s without
    (docs/frameworks.md §3.5). The compiled code and its guards are unchanged; the metric
    reads 0."""
    import torch._dynamo.guards as guards

    if hasattr(guards, "profile_guard_manager"):
        guards.profile_guard_manager = _no_guard_profile


def _no_guard_profile(*args: Any, **kwargs: Any) -> float:
    return 0.0


MODES = {"compile": compile_}


def _classes_at_dim1(t: Any) -> Any:
    """PyTorch losses want (N, C, d1, ...): move the last (class) axis of rank > 2 to dim 1."""
    return t.movedim(-1, 1) if t.dim() > 2 else t


# -- softmax, log_softmax, logsumexp -----------------------------------------------------------

def softmax(x: Any) -> Any:
    import torch.nn.functional as F

    return F.softmax(x, dim=-1)


def softmax_float32(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    return F.softmax(x, dim=-1, dtype=torch.float32)


def log_softmax(x: Any) -> Any:
    import torch.nn.functional as F

    return F.log_softmax(x, dim=-1)


def log_softmax_float32(x: Any) -> Any:
    import torch
    import torch.nn.functional as F

    return F.log_softmax(x, dim=-1, dtype=torch.float32)


def logsumexp(x: Any) -> Any:
    import torch

    return torch.logsumexp(x, dim=-1)


# -- cross-entropy ------------------------------------------------------------------------------

def cross_entropy(x: Any, labels: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(_classes_at_dim1(x), labels, reduction="none")


def cross_entropy_probs(x: Any, labels: Any) -> Any:
    import torch.nn.functional as F

    # Same shape as the input: PyTorch reads the target as class probabilities.
    return F.cross_entropy(_classes_at_dim1(x), _classes_at_dim1(labels), reduction="none")


def cross_entropy_options(x: Any, target: Any, weight: Any = None, ignore_index: int = -100,
                          label_smoothing: float = 0.0, reduction: str = "mean") -> Any:
    import torch
    import torch.nn.functional as F

    if weight is not None and not isinstance(weight, torch.Tensor):
        weight = torch.as_tensor(weight, dtype=x.dtype, device=x.device)
    if target.shape == x.shape:
        target = _classes_at_dim1(target)
    return F.cross_entropy(_classes_at_dim1(x), target, weight=weight,
                           ignore_index=ignore_index, label_smoothing=label_smoothing,
                           reduction=reduction)


def nll_loss_log_softmax(x: Any, labels: Any) -> Any:
    import torch.nn.functional as F

    return F.nll_loss(_classes_at_dim1(F.log_softmax(x, dim=-1)), labels, reduction="none")


def composed_pick(x: Any, labels: Any) -> Any:
    import torch
    import torch.nn.functional as F

    log_p = torch.log(F.softmax(x, dim=-1))
    return -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def composed_dot(x: Any, labels: Any) -> Any:
    import torch
    import torch.nn.functional as F

    return -(labels * torch.log(F.softmax(x, dim=-1))).sum(dim=-1)


def implementations() -> list[Implementation]:
    def entry(name: str, op: str, fn: Callable[..., Any], description: str,
              dtypes: tuple[str, ...] = DTYPE_NAMES, options: frozenset[str] = frozenset()
              ) -> list[Implementation]:
        return with_modes(name, op, "torch", fn, modes=MODES, dtypes=dtypes, devices=DEVICES,
                          description=description, options=options)

    return [
        *entry("torch.nn.functional.softmax", "softmax", softmax,
               "F.softmax(x, dim=-1); CPU: float32 buffer for half types, multiplies by 1/sum"),
        *entry("torch.nn.functional.softmax(dtype=float32)", "softmax", softmax_float32,
               "F.softmax(x, dim=-1, dtype=torch.float32): half input, float32 output",
               dtypes=HALF_DTYPES),
        *entry("torch.nn.functional.log_softmax", "log_softmax", log_softmax,
               "F.log_softmax(x, dim=-1): x - max - log(sum(exp(x - max)))"),
        *entry("torch.nn.functional.log_softmax(dtype=float32)", "log_softmax",
               log_softmax_float32,
               "F.log_softmax(x, dim=-1, dtype=torch.float32): half input, float32 output",
               dtypes=HALF_DTYPES),
        *entry("torch.logsumexp", "logsumexp", logsumexp,
               "torch.logsumexp(x, dim=-1): log(sum(exp(x - max))) + max"),
        *entry("torch.nn.functional.cross_entropy", "sparse_softmax_cross_entropy",
               cross_entropy,
               "F.cross_entropy(x, t, reduction='none'): nll_loss(log_softmax(x)) with class "
               "indices"),
        *entry("torch.nn.functional.cross_entropy(probs)", "softmax_cross_entropy",
               cross_entropy_probs,
               "F.cross_entropy(x, y, reduction='none') with class-probability targets"),
        *entry("torch.nn.functional.cross_entropy(options)", "cross_entropy",
               cross_entropy_options,
               "F.cross_entropy(x, t, weight=, ignore_index=, label_smoothing=, reduction=)",
               options=CROSS_ENTROPY_OPTIONS),
        *entry("torch.nn.functional.nll_loss+log_softmax", "sparse_softmax_cross_entropy",
               nll_loss_log_softmax,
               "F.nll_loss(F.log_softmax(x, dim=-1), t, reduction='none')"),
        *entry("torch.composed_softmax_log_pick", "sparse_softmax_cross_entropy",
               composed_pick, "-torch.log(F.softmax(x, dim=-1)).gather(-1, t): composed, unfused"),
        *entry("torch.composed_softmax_log_dot", "softmax_cross_entropy", composed_dot,
               "-(y * torch.log(F.softmax(x, dim=-1))).sum(-1): composed, unfused"),
    ]
