"""The harness's words, declared once: dtypes, ops, passes, devices, statuses, verdicts, frameworks.

Every other module takes these lists from here; nothing else spells them out. This module sits at
the bottom of the harness: it imports only the reference's formats (the dtypes are the formats the
reference judges), so the planner, the worker, the scorer, the store and the reports can all use
it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from references.formats import FORMATS

# -- dtypes: the reference's formats, narrowest first ------------------------------------------
DTYPES: MappingProxyType[str, np.dtype[Any]] = MappingProxyType(
    {name: fmt.dtype for name, fmt in FORMATS.items()})
DTYPE_NAMES: tuple[str, ...] = tuple(DTYPES)  # float16, bfloat16, float32, float64
LOW_PRECISION: tuple[str, ...] = ("float16", "bfloat16")  # computed in float32 by most kernels
DTYPE_SIZES: MappingProxyType[str, int] = MappingProxyType(
    {name: dtype.itemsize for name, dtype in DTYPES.items()})

# -- ops and passes --------------------------------------------------------------------------
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = "softmax", "log_softmax", "logsumexp"
DENSE_CE, SPARSE_CE, TORCH_CE = (
    "softmax_cross_entropy", "sparse_softmax_cross_entropy", "cross_entropy")
OP_NAMES: tuple[str, ...] = (SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, DENSE_CE, SPARSE_CE, TORCH_CE)
ROW_OPS: tuple[str, ...] = OP_NAMES[:5]  # the per-row ops (cross_entropy reduces)
PER_ROW_OUTPUT_OPS: frozenset[str] = frozenset({LOGSUMEXP, DENSE_CE, SPARSE_CE, TORCH_CE})
LOSS_OPS: frozenset[str] = frozenset({DENSE_CE, SPARSE_CE, TORCH_CE})
CE_OPS: tuple[str, ...] = (DENSE_CE, SPARSE_CE)  # the fused-versus-composed pair's ops
# Options an implementation of ``cross_entropy`` may declare (torch-style extra cases).
CROSS_ENTROPY_OPTIONS = frozenset({"weight", "ignore_index", "label_smoothing", "reduction"})

FORWARD, BACKWARD = "forward", "backward"
PASSES: tuple[str, ...] = (FORWARD, BACKWARD)

# -- devices ---------------------------------------------------------------------------------
DEVICES: tuple[str, ...] = ("cpu", "cuda")

# -- case statuses: what a case expects of an implementation ---------------------------------
SCORED, CONVENTION, ERROR_EXPECTED = "scored", "convention", "error_expected"
CASE_STATUSES: tuple[str, ...] = (SCORED, CONVENTION, ERROR_EXPECTED)

# -- record statuses: how a task ended -------------------------------------------------------
OK, ERROR, CRASH, TIMEOUT, UNSUPPORTED, UNAVAILABLE, SKIPPED = (
    "ok", "error", "crash", "timeout", "unsupported", "unavailable", "skipped")
STATUSES: tuple[str, ...] = (OK, ERROR, CRASH, TIMEOUT, UNSUPPORTED, UNAVAILABLE, SKIPPED)
NOT_MEASURED: frozenset[str] = frozenset({UNSUPPORTED, UNAVAILABLE, SKIPPED})


# -- verdicts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """One verdict: its name, whether it is a failure, and the words a report shows for it."""

    name: str
    failure: bool
    text: str


# Mildest first: the index is the rank `compare` uses. The runner's own outcomes (error,
# timeout, crash) rank last; unsupported, unavailable and skipped are not comparable.
VERDICT_LIST: tuple[Verdict, ...] = (
    Verdict("pass", False,
            "within the error limit; special values right"),
    # not a failure: the output follows another documented convention
    Verdict("convention_differs", False,
            "follows another documented convention on special rows (not a failure)"),
    Verdict("flushes_subnormals", True,
            "returns 0 where the answer is a subnormal number"),
    Verdict("inaccurate", True,
            "some element is beyond its ULP limit, or a small result lost to 0"),
    Verdict("silently_finite", True,
            "returns a number for a row that has no answer (bad label)"),
    Verdict("inf_where_finite", True,
            "an infinity where the answer is finite, or a wrong infinity"),
    Verdict("finite_where_nan", True,
            "a value where the answer is NaN"),
    Verdict("nan_where_finite", True,
            "NaN where the answer is a number"),
    Verdict("wrong_shape", True,
            "the output has the wrong shape"),
    Verdict("error", True,
            "raised an exception on an input that has an answer"),
    Verdict("device_assert", True,
            "a device error that kills or poisons the process (e.g. a CUDA device-side "
            "assert), even where raising is accepted"),
    Verdict("timeout", True,
            "did not finish within the time limit"),
    Verdict("crash", True,
            "the worker process died"),
)
VERDICT_INFO: MappingProxyType[str, Verdict] = MappingProxyType(
    {v.name: v for v in VERDICT_LIST})
VERDICTS: tuple[str, ...] = tuple(v.name for v in VERDICT_LIST)
VERDICT_RANK: MappingProxyType[str, int] = MappingProxyType(
    {v: i for i, v in enumerate(VERDICTS)})
FAILURE_VERDICTS: frozenset[str] = frozenset(v.name for v in VERDICT_LIST if v.failure)
# Verdicts of tasks that did not run; they carry their status's name.
NOT_RUN_VERDICTS: tuple[str, ...] = (UNSUPPORTED, UNAVAILABLE, SKIPPED)
NOT_RUN_TEXT: MappingProxyType[str, str] = MappingProxyType({
    UNSUPPORTED: "not run: the implementation does not take this dtype or pass",
    UNAVAILABLE: "not run: the framework or device is not there",
    SKIPPED: "not run: skipped after repeated timeouts (--resume --retry-skipped runs it)",
})

ACCURACY_CLASSES: tuple[str, ...] = ("correctly_rounded", "faithful", "within_bound",
                                     "outside_bound")


# -- severity: how bad a record's outcome is, mildest first -----------------------------------
@dataclass(frozen=True)
class Severity:
    """One rung of the severity ladder: its name and the words a report shows for it."""

    name: str
    text: str


SEVERITY_LIST: tuple[Severity, ...] = (
    Severity("none", "no defect: a pass, or another documented convention"),
    Severity("minor", "a small excess over an ULP limit (at most 4 times it), or subnormal "
                      "results flushed to 0"),
    Severity("major", "far over an ULP limit, a lost value (0 or the wrong sign where the "
                      "answer is a normal number), or an exception where a value was expected"),
    Severity("critical", "NaN or an infinity where the answer is finite, a value where it is "
                         "NaN, a number for a row that has none, the wrong shape, a crash, a "
                         "hang, or a device error that poisons the process"),
)
SEVERITIES: tuple[str, ...] = tuple(s.name for s in SEVERITY_LIST)
SEVERITY_RANK: MappingProxyType[str, int] = MappingProxyType(
    {s: i for i, s in enumerate(SEVERITIES)})
SEVERITY_TEXT: MappingProxyType[str, str] = MappingProxyType(
    {s.name: s.text for s in SEVERITY_LIST})
NO_SEVERITY, MINOR, MAJOR, CRITICAL = SEVERITIES
# ``inaccurate`` is minor while its limit_ratio is at most this, major above (docs/scoring.md).
MINOR_LIMIT_FACTOR = 4.0
# The severity of each verdict; ``inaccurate`` is the one that depends on how far over.
VERDICT_SEVERITY: MappingProxyType[str, str] = MappingProxyType({
    "pass": NO_SEVERITY, "convention_differs": NO_SEVERITY, "flushes_subnormals": MINOR,
    "inaccurate": MAJOR, "silently_finite": CRITICAL, "inf_where_finite": CRITICAL,
    "finite_where_nan": CRITICAL, "nan_where_finite": CRITICAL, "wrong_shape": CRITICAL,
    "error": MAJOR, "device_assert": CRITICAL, "timeout": CRITICAL, "crash": CRITICAL,
})


def severity_of(verdict: str | None, limit_ratio: float | None = None, *,
                lost_value: bool = False) -> str | None:
    """The severity of a verdict: ``inaccurate`` is minor when it is at most
    ``MINOR_LIMIT_FACTOR`` times over its limit and lost no value, major otherwise; every other
    verdict has one severity. None for a task that did not run (or an unknown verdict)."""
    if verdict is None or verdict not in VERDICT_SEVERITY:
        return None
    if verdict == "inaccurate":
        small = (limit_ratio is not None and limit_ratio == limit_ratio
                 and limit_ratio <= MINOR_LIMIT_FACTOR)
        return MINOR if small and not lost_value else MAJOR
    return VERDICT_SEVERITY[verdict]


# -- which rows decided a verdict (padded cases) ----------------------------------------------
DECIDED_BY: tuple[str, ...] = ("special", "padding", "none")

# -- case families that are not inputs ----------------------------------------------------------
THROUGHPUT_FAMILY = "throughput"  # the case family of every timing record


# -- frameworks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Framework:
    """A framework the harness knows: its import name, where its version is read, the extra that
    installs it, its adapter and its built-in implementations (modules of ``harness.worker``)."""

    name: str
    module: str
    distributions: tuple[str, ...]
    extra: str | None  # None: installed with softmax-bench itself
    adapter: str  # "module:Class"
    builtins: str  # module with ``implementations()``
    # A framework added by a plugin (entry-point group ADAPTER_ENTRY_POINT_GROUP; found by
    # harness.frameworks): the entry point's name, and the install command its adapter gives.
    source: str = "builtin"
    install: str | None = None

    @property
    def install_hint(self) -> str:
        if self.install:
            return self.install
        return (f"pip install 'softmax-bench[{self.extra}]'" if self.extra
                else "pip install softmax-bench")


_W = "harness.worker"
# Distributions are tried in order; TensorFlow is published under several names.
FRAMEWORK_LIST: tuple[Framework, ...] = (
    Framework("numpy", "numpy", ("numpy",), None,
              f"{_W}.adapters.numpy_adapter:NumpyAdapter", f"{_W}.impls.numpy_impls"),
    Framework("scipy", "scipy", ("scipy",), "scipy",
              f"{_W}.adapters.numpy_adapter:ScipyAdapter", f"{_W}.impls.scipy_impls"),
    Framework("torch", "torch", ("torch",), "torch",
              f"{_W}.adapters.torch_adapter:TorchAdapter", f"{_W}.impls.torch_impls"),
    Framework("tensorflow", "tensorflow",
              ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly", "tf-nightly-cpu"),
              "tensorflow", f"{_W}.adapters.tensorflow_adapter:TensorflowAdapter",
              f"{_W}.impls.tensorflow_impls"),
    Framework("jax", "jax", ("jax",), "jax",
              f"{_W}.adapters.jax_adapter:JaxAdapter", f"{_W}.impls.jax_impls"),
)
FRAMEWORKS: MappingProxyType[str, Framework] = MappingProxyType(
    {f.name: f for f in FRAMEWORK_LIST})
FRAMEWORK_NAMES: tuple[str, ...] = tuple(FRAMEWORKS)  # the built-ins
# Third-party frameworks: entry point name = framework name, value = "module:AdapterClass"
# (harness.frameworks.all_frameworks() gives the built-ins plus these).
ADAPTER_ENTRY_POINT_GROUP = "softmax_bench.adapters"
