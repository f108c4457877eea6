"""The case families of docs/cases.md §2-§7, as calls of the ``references`` API, for its tests.

The inputs come from :mod:`harness.planning.cases`, the one generator of case inputs (its
conventions: values rounded once to the dtype, seeds from SHA-256 of the case id, special rows
mixed with N(0, 1) rows). Here each family is a function ``family(dtype) -> list[Case]`` at the
sizes the oracle can afford (C <= 64 mostly, a few rows of up to 1024), and a case holds, per API
function of ``references`` it exercises, the call to make (``Call``): the same call goes to the
oracle and to the engine. A case whose parameters overflow the dtype is unsupported there and
simply not produced.

``gpu_width_sweep``, ``huge_tensor``, ``eager_vs_compiled`` and ``non_contiguous`` are framework
concerns and are not here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from harness.ops import BACKWARD, FORWARD, OPS
from harness.planning import cases as C
from tests.references import oracle

DTYPES: dict[str, np.dtype] = dict(C.DTYPES)

API_FUNCTIONS = oracle.API_FUNCTIONS
LOSS_FUNCTIONS = (
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "cross_entropy",
    "softmax_cross_entropy_grad",
    "sparse_softmax_cross_entropy_grad",
    "cross_entropy_grad",
)
NEG_INF = C.NEG_INF
NAN = C.NAN
INF = C.INF

# Shared helpers, under the names these tests have always used.
Format = C.Thresholds
fmt = C.thresholds
Unrepresentable = C.Unrepresentable
round_to = C.round_to
next_toward = C.next_toward
case_rng = C.case_rng
case_id = C.case_id

# API function name <-> harness (op, pass).
FUNCTION_OF: dict[C.Call, str] = {
    (op, p): (spec.forward if p == FORWARD else spec.backward).__name__
    for op, spec in OPS.items()
    for p in (FORWARD, BACKWARD)
}
CALL_OF: dict[str, C.Call] = {name: call for call, name in FUNCTION_OF.items()}
assert set(CALL_OF) == set(API_FUNCTIONS)


@dataclass(frozen=True)
class Call:
    """Positional and keyword arguments of one API call; ``expect_error``: it must raise."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    expect_error: bool = False


@dataclass(frozen=True)
class Case:
    """One named input: ``op_inputs`` maps an API function name to its call."""

    id: str
    family: str
    op_inputs: dict[str, Call]


class KnownValue(NamedTuple):
    """A closed-form expectation: ``function(*args.args, **args.kwargs)`` rounds to ``expected``."""

    description: str
    function: str
    args: Call
    expected: np.ndarray


# --------------------------------------------------------------------------------------------
# harness.planning.cases -> Call objects
# --------------------------------------------------------------------------------------------


def _args(fc: C.FamilyCase, op: str, pass_: str) -> tuple[Any, ...]:
    """The API call's positional arguments, as harness.ops.OpSpec.reference passes them."""
    spec = OPS[op]
    named = {"x": fc.x, "labels": fc.labels, "targets": fc.targets}
    args = tuple(named[name] for name in spec.inputs)
    if pass_ == BACKWARD and spec.random_cotangent:
        return (fc.x, fc.cotangent)
    return args


def to_cases(*groups: Iterable[C.FamilyCase]) -> list[Case]:
    """Reference-test cases from harness family cases; unsupported ones are left out."""
    out: list[Case] = []
    for group in groups:
        for fc in group:
            if fc.unsupported:
                continue
            calls = {
                FUNCTION_OF[call]: Call(_args(fc, *call), dict(spec.options), spec.expect_error)
                for call, spec in fc.calls.items()
            }
            out.append(Case(fc.case_id, fc.family, calls))
    return out


def make_case(
    family: str,
    params: Mapping[str, Any],
    dtype: Any,
    rows: Sequence[Sequence[float]],
    *,
    ops: Iterable[str] = API_FUNCTIONS,
    errors: Iterable[str] = (),
    ce_kwargs: Mapping[str, Any] | None = None,
    ce_grad_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> list[Case]:
    """One case (harness.planning.cases.make_case) as API calls; ``[]`` when the dtype cannot
    hold it."""
    fc = C.make_case(
        family, params, dtype, rows, calls=[CALL_OF[o] for o in ops],
        errors=[CALL_OF[o] for o in errors], ce_options=ce_kwargs, ce_grad_options=ce_grad_kwargs,
        **kwargs,
    )
    return to_cases([fc])


# --------------------------------------------------------------------------------------------
# The families at the oracle's sizes
# --------------------------------------------------------------------------------------------


def smoke_small(dtype: Any) -> list[Case]:
    """The TF kernel-test inputs."""
    return to_cases(C.smoke_small(dtype))


def uniform_row(dtype: Any) -> list[Case]:
    """``x = c * 1``; large C only for c in {0, 1e4} (scaled down from 2**20)."""
    return to_cases(
        C.uniform_row(dtype, C=(1, 2, 3, 7, 64)),
        C.uniform_row(dtype, C=(512,), c=(0.0,), mix=1),
        C.uniform_row(dtype, C=(512,), c=(1e4,)),
        C.uniform_row(dtype, C=(1000,), c=(0.0, 1e4)),
    )


def large_offset(dtype: Any) -> list[Case]:
    """``c + r`` rows and ``[c, c]`` for offsets the dtype can hold."""
    return to_cases(C.large_offset(dtype))


def random_normal(dtype: Any) -> list[Case]:
    """N(0, sigma**2) logits; the C = 1000 anchor row of docs/numerics.md §9."""
    groups = [
        C.random_normal(dtype, sigma=(sigma,), C=(10, 64) if sigma in (1.0, 10.0, 30.0) else (10,),
                        anchor=False)
        for sigma in (0.1, 1.0, 3.0, 10.0, 30.0, 100.0)
    ]
    return to_cases(*groups, C.random_normal(dtype, sigma=(), anchor=True))


def catastrophic_condition(dtype: Any) -> list[Case]:
    """``l_j`` close to 0: ``[0, -30]``, ``[c, c - 1e-3]`` (or the neighbour below c)."""
    return to_cases(C.catastrophic_condition(dtype))


def dominant_logit(dtype: Any) -> list[Case]:
    """``[0, -g]``, ``[g, 0]`` and ``[0, -g, ..., -g]`` rows: lost ``log1p`` tails."""
    return to_cases(C.dominant_logit(dtype), C.dominant_logit(dtype, gap=(20.0, "g_1"), C=(1000,)))


def vjp_dominant_gap(dtype: Any) -> list[Case]:
    """``[37.42994775023705, 0]`` with cotangent ``[1, 0]``; gap ``g_vjp`` per dtype."""
    return to_cases(C.vjp_dominant_gap(dtype))


def two_class_scan(dtype: Any) -> list[Case]:
    """C = 2 rows ``[0, -g]`` over a sample of gaps (the exhaustive scan, scaled down)."""
    return to_cases(C.two_class_scan(dtype))


def overflow_edge(dtype: Any) -> list[Case]:
    """One entry at ``L_max ± delta`` (0.01 and one ulp) or ``2 L_max``, the others near 0."""
    return to_cases(C.overflow_edge(dtype))


def row_near_max(dtype: Any) -> list[Case]:
    """``[max, max, max]`` and TF's ``_testOverflow`` rows."""
    return to_cases(C.row_near_max(dtype))


def underflow_tail(dtype: Any) -> list[Case]:
    """Gaps spanning the subnormal band and ``zero_cut``; CE targets in the tail."""
    return to_cases(C.underflow_tail(dtype))


def all_neg_inf(dtype: Any) -> list[Case]:
    """Fully masked rows."""
    return to_cases(C.all_neg_inf(dtype))


def partial_neg_inf(dtype: Any) -> list[Case]:
    """Masks: ``[0, -inf, 1, -inf]``, causal rows, a single finite entry."""
    return to_cases(C.partial_neg_inf(dtype))


def soft_label_neg_inf_zero_label(dtype: Any) -> list[Case]:
    """Zero soft labels at ``-inf`` logits (``0 * log 0 := 0``)."""
    return to_cases(C.soft_label_neg_inf_zero_label(dtype))


def neg_inf_at_target(dtype: Any) -> list[Case]:
    """Sparse targets and positive soft labels at ``-inf`` logits; labels of both signs there."""
    return to_cases(C.neg_inf_at_target(dtype))


def pos_inf(dtype: Any) -> list[Case]:
    """``+inf`` entries, targets on and off them."""
    return to_cases(C.pos_inf(dtype))


def nan_in_row(dtype: Any) -> list[Case]:
    """NaN first, middle, last, at the maximum, with ``±inf``, whole row."""
    return to_cases(C.nan_in_row(dtype))


def masked_large_values(dtype: Any) -> list[Case]:
    """Finite additive masks: ``-1e9`` and ``finfo.min`` (``-65504`` in float16)."""
    return to_cases(C.masked_large_values(dtype))


def single_class(dtype: Any) -> list[Case]:
    """C = 1 (every finite logit): softmax 1, log_softmax +0, gradients 0."""
    return to_cases(C.single_class(dtype))


def empty_axis(dtype: Any) -> list[Case]:
    """C = 0: empty softmax, LSE -inf per row; cross-entropy must raise."""
    return to_cases(C.empty_axis(dtype))


def empty_batch(dtype: Any) -> list[Case]:
    """N = 0: shape (0, C); CE 'sum' 0 and 'mean' NaN."""
    return to_cases(C.empty_batch(dtype))


def labels_out_of_range(dtype: Any) -> list[Case]:
    """Invalid sparse labels: the call must raise (or give NaN rows for the bad labels)."""
    return to_cases(C.labels_out_of_range(dtype))


def all_ignored(dtype: Any) -> list[Case]:
    """Every target equal to ``ignore_index``; partly ignored batches."""
    return to_cases(C.all_ignored(dtype))


def label_smoothing_weight_ignore(dtype: Any) -> list[Case]:
    """PyTorch's option formula: smoothing x weights (with zeros) x ignored rows x reduction."""
    return to_cases(C.label_smoothing_weight_ignore(dtype))


def soft_labels_off_simplex(dtype: Any) -> list[Case]:
    """Dense labels with zero rows, negative entries, sums of 2 and 0.5."""
    return to_cases(C.soft_labels_off_simplex(dtype))


def long_row_low_precision(dtype: Any) -> list[Case]:
    """Two rows of C = 1000 (scaled down from 32k-256k) and a mean-reduced CE."""
    return to_cases(C.long_row_low_precision(dtype))


def tied_max_low_precision(dtype: Any) -> list[Case]:
    """Ties at the maximum and zero rows (gradients of log_softmax and CE)."""
    return to_cases(C.tied_max_low_precision(dtype))


def large_array_grad_fp16(dtype: Any) -> list[Case]:
    """Gradient of ``log_softmax(x).sum()`` over one row of 1024 (scaled down from 2**16)."""
    return to_cases(C.large_array_grad_fp16(dtype))


FAMILIES: dict[str, Callable[[Any], list[Case]]] = {
    f.__name__: f
    for f in (
        smoke_small,
        uniform_row,
        large_offset,
        random_normal,
        catastrophic_condition,
        dominant_logit,
        vjp_dominant_gap,
        two_class_scan,
        overflow_edge,
        row_near_max,
        underflow_tail,
        all_neg_inf,
        partial_neg_inf,
        soft_label_neg_inf_zero_label,
        neg_inf_at_target,
        pos_inf,
        nan_in_row,
        masked_large_values,
        single_class,
        empty_axis,
        empty_batch,
        labels_out_of_range,
        all_ignored,
        label_smoothing_weight_ignore,
        soft_labels_off_simplex,
        long_row_low_precision,
        tied_max_low_precision,
        large_array_grad_fp16,
    )
}


# --------------------------------------------------------------------------------------------
# Closed-form expectations (docs/cases.md, docs/numerics.md; values computed independently with
# mpmath at 2000 bits from the closed forms given in each description, then rounded to float64)
# --------------------------------------------------------------------------------------------

_F32 = np.float32
_F64 = np.float64
_MAX64 = float(np.finfo(np.float64).max)
_E1 = [0.0, NEG_INF, 1.0, NEG_INF]


def _a(values: Any, dtype: Any = _F64) -> np.ndarray:
    return np.array(values, dtype=dtype)


def _kv(desc: str, fn: str, args: tuple[Any, ...], expected: Any, **kwargs: Any) -> KnownValue:
    return KnownValue(desc, fn, Call(args, kwargs), np.array(expected, dtype=np.float64))


KNOWN_VALUES: list[KnownValue] = [
    _kv("float32 log_softmax([0,-20]) = [-log1p(e^-20), -20 - log1p(e^-20)] (docs/cases.md §3)",
        "log_softmax", (_a([[0, -20]], _F32),), [[-2.061153620314381e-09, -20.000000002061153]]),
    _kv("softmax([0, fl(ln 2)]) = [1/(1+e^x), e^x/(1+e^x)] rounds to [1/3, 2/3]",
        "softmax", (_a([[0.0, math.log(2)]]),), [[1 / 3, 2 / 3]]),
    _kv("log_softmax VJP of [37.42994775023705, 0], g=[1,0]: [p1, -p1] (docs/numerics.md §4)",
        "log_softmax_vjp", (_a([[37.42994775023705, 0.0]]), _a([[1.0, 0.0]])),
        [[5.551115123125776e-17, -5.551115123125776e-17]]),
    _kv("softmax VJP of [37.42994775023705, 0], g=[1,0]: [p0 p1, -p0 p1]",
        "softmax_vjp", (_a([[37.42994775023705, 0.0]]), _a([[1.0, 0.0]])),
        [[5.551115123125775e-17, -5.551115123125775e-17]]),
    _kv("sparse CE gradient of [37.42994775023705, 0], t=0: [-p1, p1]",
        "sparse_softmax_cross_entropy_grad", (_a([[37.42994775023705, 0.0]]), _a([0], np.int64)),
        [[-5.551115123125776e-17, 5.551115123125776e-17]]),
    _kv("smoke_small sparse losses: log 4, lse(1..4) - 1",
        "sparse_softmax_cross_entropy", (_a([[1, 1, 1, 1], [1, 2, 3, 4]]), _a([3, 0], np.int64)),
        [1.3862943611198906, 3.4401896985611953]),
    _kv("smoke_small dense losses: log 4, lse(1..4) - 2.5",
        "softmax_cross_entropy",
        (_a([[1, 1, 1, 1], [1, 2, 3, 4]]), _a([[0, 0, 0, 1], [0, 0.5, 0.5, 0]])),
        [1.3862943611198906, 1.9401896985611953]),
    _kv("smoke_small sparse gradients: 1/4 - e_3, softmax(1..4) - e_0",
        "sparse_softmax_cross_entropy_grad",
        (_a([[1, 1, 1, 1], [1, 2, 3, 4]]), _a([3, 0], np.int64)),
        [[0.25, 0.25, 0.25, -0.75],
         [-0.967941396719915, 0.08714431874203257, 0.23688281808991013, 0.6439142598879724]]),
    _kv("float64 log_softmax([0,-700]) = [-log1p(e^-700), -700 - log1p(e^-700)]",
        "log_softmax", (_a([[0.0, -700.0]]),), [[-9.85967654375977e-305, -700.0]]),
    _kv("log_softmax([max,1,2,3]) = [-0, -max, -max, -max] (negative tiny rounds to -0)",
        "log_softmax", (_a([[_MAX64, 1, 2, 3]]),), [[-0.0, -_MAX64, -_MAX64, -_MAX64]]),
    _kv("logsumexp([max,max,max]) = RN(max + log 3) = max",
        "logsumexp", (_a([[_MAX64] * 3]),), [_MAX64]),
    _kv("softmax([max,max,max]) = 1/3", "softmax", (_a([[_MAX64] * 3]),), [[1 / 3] * 3]),
    _kv("float32 log_softmax([1e8, 1e8]) = -log 2", "log_softmax", (_a([[1e8, 1e8]], _F32),),
        [[-0.6931471805599453] * 2]),
    _kv("float32 sparse CE([1e8, 1e8], t=1) = log 2", "sparse_softmax_cross_entropy",
        (_a([[1e8, 1e8]], _F32), _a([1], np.int64)), [0.6931471805599453]),
    _kv("uniform C=7: softmax 1/7", "softmax", (_a([[1.0] * 7]),), [[1 / 7] * 7]),
    _kv("uniform C=7: log_softmax -log 7", "log_softmax", (_a([[-5.0] * 7]),),
        [[-1.9459101490553132] * 7]),
    _kv("C=1: softmax 1", "softmax", (_a([[0.0], [-3.0], [_MAX64]]),), [[1.0], [1.0], [1.0]]),
    _kv("C=1: log_softmax +0", "log_softmax", (_a([[0.0], [-3.0], [_MAX64]]),),
        [[0.0], [0.0], [0.0]]),
    _kv("C=1: logsumexp = x", "logsumexp", (_a([[0.0], [-3.0], [_MAX64]]),), [0.0, -3.0, _MAX64]),
    _kv("C=1: sparse CE 0", "sparse_softmax_cross_entropy",
        (_a([[0.0], [-3.0], [_MAX64]]), _a([0, 0, 0], np.int64)), [0.0, 0.0, 0.0]),
    _kv("TF testSingleClass: dense CE (sum y) x - y x = 0",
        "softmax_cross_entropy", (_a([[1.0], [-1.0], [0.0], [1.0]]), _a([[-1.0], [0], [1], [1]])),
        [0.0, 0.0, 0.0, 0.0]),
    _kv("TF testSingleClass: dense CE gradient (sum y) p - y = 0",
        "softmax_cross_entropy_grad",
        (_a([[1.0], [-1.0], [0.0], [1.0]]), _a([[-1.0], [0], [1], [1]])),
        [[0.0], [0.0], [0.0], [0.0]]),
    _kv("softmax([0,-inf,1,-inf]) = [1/(1+e), +0, e/(1+e), +0]", "softmax", (_a([_E1]),),
        [[0.2689414213699951, 0.0, 0.7310585786300049, 0.0]]),
    _kv("log_softmax([0,-inf,1,-inf]) = [-log(1+e), -inf, 1-log(1+e), -inf]", "log_softmax",
        (_a([_E1]),), [[-1.3132616875182228, NEG_INF, -0.3132616875182228, NEG_INF]]),
    _kv("log_softmax VJP at [0,-inf,1,-inf], g=[.5,.25,-1,2]: g - p*1.75, g_i at -inf",
        "log_softmax_vjp", (_a([_E1]), _a([[0.5, 0.25, -1.0, 2.0]])),
        [[0.02935251260250854, 0.25, -2.2793525126025087, 2.0]]),
    _kv("logsumexp of special rows: [+inf,0] -> +inf, all -inf -> -inf, NaN -> NaN",
        "logsumexp", (_a([[INF, 0.0], [NEG_INF, NEG_INF], [NAN, 0.0], [INF, NEG_INF]]),),
        [INF, NEG_INF, NAN, INF]),
    _kv("softmax of [+inf,0], all -inf, NaN rows: whole row NaN", "softmax",
        (_a([[INF, 0.0], [NEG_INF, NEG_INF], [NAN, 0.0]]),), [[NAN, NAN]] * 3),
    _kv("dense CE [0,-inf,1], y=[.5,0,.5]: log(1+e) - 0.5 (0 log 0 := 0)",
        "softmax_cross_entropy", (_a([[0.0, NEG_INF, 1.0]]), _a([[0.5, 0.0, 0.5]])),
        [0.8132616875182228]),
    _kv("dense CE gradient [0,-inf,1], y=[.5,0,.5]: p - y, 0 at -inf",
        "softmax_cross_entropy_grad", (_a([[0.0, NEG_INF, 1.0]]), _a([[0.5, 0.0, 0.5]])),
        [[-0.23105857863000487, 0.0, 0.23105857863000487]]),
    _kv("sparse CE with the target at -inf: +inf", "sparse_softmax_cross_entropy",
        (_a([[0.0, NEG_INF, 1.0]]), _a([1], np.int64)), [INF]),
    _kv("sparse CE gradient with the target at -inf: p - e_t with p_t = 0",
        "sparse_softmax_cross_entropy_grad", (_a([[0.0, NEG_INF, 1.0]]), _a([1], np.int64)),
        [[0.2689414213699951, -1.0, 0.7310585786300049]]),
    _kv("float64 softmax tail: e^-745.2 -> +0, e^-744 -> 2 subnormal ulps, e^-744.44 -> 1",
        "softmax", (_a([[0.0, -745.2], [0.0, -744.0], [0.0, -744.44]]),),
        [[1.0, 0.0], [1.0, 1e-323], [1.0, 5e-324]]),
    _kv("float64 log_softmax([1e6, 1e6-1e-3]): [-log1p(e^d), d - log1p(e^d)], d exact",
        "log_softmax", (_a([[1e6, 1e6 - 1e-3]]),), [[-0.6926473055362032, -0.6936473055837007]]),
    _kv("torch CE [1,2,3], t=2, w=[1,2,.5], eps=0.1, mean: l / w_t",
        "cross_entropy", (_a([[1.0, 2.0, 3.0]]), _a([2], np.int64)), 0.7286200930369644,
        weight=_a([1.0, 2.0, 0.5]), label_smoothing=0.1),
    _kv("torch CE probability targets, w=[2,1], eps=0.2, none",
        "cross_entropy", (_a([[0.0, 1.0], [2.0, -1.0]]), _a([[0.25, 0.75], [1.0, 0.0]])),
        [1.0072401937736897, 0.3923159679901099], weight=_a([2.0, 1.0]), label_smoothing=0.2,
        reduction="none"),
    _kv("torch CE probability targets, w=[2,1], eps=0.2, mean over N = 2",
        "cross_entropy", (_a([[0.0, 1.0], [2.0, -1.0]]), _a([[0.25, 0.75], [1.0, 0.0]])),
        0.6997780808818999, weight=_a([2.0, 1.0]), label_smoothing=0.2),
    _kv("torch CE all targets ignored, mean: 0/0 = NaN", "cross_entropy",
        (_a([[0.0, 1.0], [2.0, -1.0]]), _a([-100, -100], np.int64)), NAN),
    _kv("torch CE all targets ignored, sum: 0", "cross_entropy",
        (_a([[0.0, 1.0], [2.0, -1.0]]), _a([-100, -100], np.int64)), 0.0, reduction="sum"),
    _kv("torch CE all targets ignored, none: zeros", "cross_entropy",
        (_a([[0.0, 1.0], [2.0, -1.0]]), _a([-100, -100], np.int64)), [0.0, 0.0],
        reduction="none"),
]
