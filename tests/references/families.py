"""Deterministic inputs for the case families of cases.md §2-§7 that apply to a CPU reference.

Each family is a function ``family(dtype) -> list[Case]``.  A case holds, per API function of
``references`` it exercises, the call to make (``Call``): the same call goes to the oracle and
to the engine.  Conventions (cases.md §0):

* values are built in float64 and rounded once, to nearest-even, into the dtype (through an
  MPFR context, so bfloat16 is not double-rounded via float32); the rounded array is the input;
* a case whose parameters overflow the dtype is *unsupported* there and simply not produced;
* randomness comes from ``numpy.random.default_rng`` seeded with the first 8 bytes of the
  SHA-256 of the case id, so a case is the same on every machine and in every dtype;
* logits have shape (N, C) with special rows mixed with N(0, 1) rows, sparse labels are int64,
  dense labels and cotangents are in the logits dtype.

Sizes are scaled down from cases.md where the oracle would be too slow (C <= 64 mostly, a few
rows of up to 1024); ``gpu_width_sweep``, ``huge_tensor``, ``eager_vs_compiled`` and
``non_contiguous`` are framework concerns and are not here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from tests.references import oracle

DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}

API_FUNCTIONS = oracle.API_FUNCTIONS
LOSS_FUNCTIONS = (
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "cross_entropy",
    "softmax_cross_entropy_grad",
    "sparse_softmax_cross_entropy_grad",
    "cross_entropy_grad",
)
NEG_INF = -math.inf
NAN = math.nan
INF = math.inf


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
# Formats and helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """The per-dtype thresholds of cases.md §0."""

    name: str
    p: int
    max: float
    min_normal: float
    min_sub: float

    @property
    def l_max(self) -> float:
        return math.log(self.max)

    @property
    def l_sub(self) -> float:
        return math.log(self.min_sub)

    @property
    def ln_min_normal(self) -> float:
        return math.log(self.min_normal)

    @property
    def zero_cut(self) -> float:
        return math.log(self.min_sub / 2)

    @property
    def g_1(self) -> float:
        return self.p * math.log(2)

    @property
    def g_vjp(self) -> float:
        return (self.p + 1) * math.log(2)


def fmt(dtype: Any) -> Format:
    """Format constants of a dtype."""
    dt = np.dtype(dtype)
    fi = ml_dtypes.finfo(dt)
    return Format(
        dt.name, int(fi.nmant) + 1, float(fi.max), float(fi.smallest_normal),
        float(fi.smallest_subnormal),
    )


class Unrepresentable(ValueError):
    """A finite parameter overflows the dtype: the (case, dtype) is unsupported."""


def round_to(values: Any, dtype: Any) -> np.ndarray:
    """Round float64 values once, to nearest-even, into ``dtype``."""
    v = np.asarray(values, dtype=np.float64)
    out = oracle.to_format_rn(oracle.exact(v), dtype)
    if np.any(np.isinf(out.astype(np.float64)) & np.isfinite(v)):
        raise Unrepresentable(f"value overflows {np.dtype(dtype).name}")
    return out


def next_toward(value: float, dtype: Any, direction: int) -> float:
    """The neighbour of the dtype value nearest to ``value``, one ulp up or down."""
    dt = np.dtype(dtype)
    v = round_to([value], dt)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
    bits = int(v.view(uint)[0])
    step = direction if float(v[0].astype(np.float64)) >= 0 else -direction
    return float(np.array([bits + step], dtype=uint).view(dt)[0].astype(np.float64))


def case_rng(case_id: str, salt: str = "") -> np.random.Generator:
    """The generator of a case: seeded from SHA-256 of its id (never Python's ``hash``)."""
    digest = hashlib.sha256((case_id + salt).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def case_id(family: str, params: Mapping[str, Any]) -> str:
    """``family[key=value,...]``."""

    def show(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, (list, tuple)):
            return ",".join(show(x) for x in v)
        return str(v)

    return f"{family}[{','.join(f'{k}={show(v)}' for k, v in params.items())}]"


def _dirichlet(rng: np.random.Generator, n: int) -> list[float]:
    return rng.dirichlet(np.ones(n)).tolist() if n else []


def make_case(
    family: str,
    params: Mapping[str, Any],
    dtype: Any,
    rows: Sequence[Sequence[float]],
    *,
    n_classes: int | None = None,
    mix: int = 2,
    sparse: Sequence[int | None] | None = None,
    dense: Sequence[Sequence[float] | None] | None = None,
    g: Sequence[Sequence[float] | None] | None = None,
    ops: Iterable[str] = API_FUNCTIONS,
    errors: Iterable[str] = (),
    ce_kwargs: Mapping[str, Any] | None = None,
    ce_grad_kwargs: Mapping[str, Any] | None = None,
) -> list[Case]:
    """One case: special ``rows`` with ``mix`` N(0, 1) rows around them (one before).

    ``sparse``/``dense``/``g`` give the labels and cotangents of the special rows (``None``
    entries, or the whole argument omitted, mean random); the mixed rows get random ones.
    Returns ``[]`` when a value overflows the dtype (unsupported).
    """
    cid = case_id(family, params)
    rng = case_rng(cid)
    c = n_classes if n_classes is not None else (len(rows[0]) if rows else 0)
    n_special = len(rows)
    before = 1 if mix else 0
    order: list[int | None] = [None] * before + list(range(n_special)) + [None] * (mix - before)
    x, lab, y, cot = [], [], [], []
    for idx in order:
        normal = rng.standard_normal(c).tolist()
        rand_label = int(rng.integers(0, c)) if c else 0
        rand_dense = _dirichlet(rng, c)
        rand_g = rng.standard_normal(c).tolist()
        if idx is None:
            x.append(normal)
            lab.append(rand_label)
            y.append(rand_dense)
            cot.append(rand_g)
            continue
        x.append(list(rows[idx]))
        s = sparse[idx] if sparse is not None else None
        lab.append(rand_label if s is None else s)
        dv = dense[idx] if dense is not None else None
        y.append(rand_dense if dv is None else list(dv))
        gv = g[idx] if g is not None else None
        cot.append(rand_g if gv is None else list(gv))
    shape = (len(order), c)
    try:
        xa = round_to(np.array(x, dtype=np.float64).reshape(shape), dtype)
        ya = round_to(np.array(y, dtype=np.float64).reshape(shape), dtype)
        ga = round_to(np.array(cot, dtype=np.float64).reshape(shape), dtype)
    except Unrepresentable:
        return []
    la = np.array(lab, dtype=np.int64)
    errs = set(errors)
    ce_kw = dict(ce_kwargs) if ce_kwargs is not None else {"reduction": "none"}
    ceg_kw = dict(ce_grad_kwargs) if ce_grad_kwargs is not None else {}
    table: dict[str, tuple[tuple[Any, ...], Mapping[str, Any]]] = {
        "softmax": ((xa,), {}),
        "log_softmax": ((xa,), {}),
        "logsumexp": ((xa,), {}),
        "softmax_cross_entropy": ((xa, ya), {}),
        "sparse_softmax_cross_entropy": ((xa, la), {}),
        "cross_entropy": ((xa, la), ce_kw),
        "softmax_vjp": ((xa, ga), {}),
        "log_softmax_vjp": ((xa, ga), {}),
        "logsumexp_grad": ((xa,), {}),
        "softmax_cross_entropy_grad": ((xa, ya), {}),
        "sparse_softmax_cross_entropy_grad": ((xa, la), {}),
        "cross_entropy_grad": ((xa, la), ceg_kw),
    }
    calls = {op: Call(table[op][0], table[op][1], op in errs) for op in ops}
    return [Case(cid, family, calls)]


def _torch_case(
    family: str,
    params: Mapping[str, Any],
    dtype: Any,
    x: np.ndarray,
    target: np.ndarray,
    options: Mapping[str, Any],
    *,
    error: bool = False,
) -> Case:
    """A case exercising only ``cross_entropy`` (and its gradient unless reduction='none')."""
    calls = {"cross_entropy": Call((x, target), dict(options), error)}
    if options.get("reduction", "mean") != "none":
        calls["cross_entropy_grad"] = Call((x, target), dict(options), error)
    return Case(case_id(family, params), family, calls)


# --------------------------------------------------------------------------------------------
# §2 Scale and shift
# --------------------------------------------------------------------------------------------


def smoke_small(dtype: Any) -> list[Case]:
    """The TF kernel-test inputs."""
    return make_case(
        "smoke_small", {"tf": "kernel_test"}, dtype, [[1, 1, 1, 1], [1, 2, 3, 4]], mix=0,
        sparse=[3, 0], dense=[[0, 0, 0, 1], [0, 0.5, 0.5, 0]],
    )


def uniform_row(dtype: Any) -> list[Case]:
    """``x = c * 1``; large C only for c in {0, 1e4} (scaled down from 2**20)."""
    out: list[Case] = []
    offsets = [0.0, 1.0, -5.0, 1e4] + ([1000.0] if np.dtype(dtype) == np.float16 else [])
    for c in (1, 2, 3, 7, 64):
        for off in offsets:
            out += make_case("uniform_row", {"C": c, "c": off}, dtype, [[off] * c])
    for c in (512, 1000):
        for off in (0.0, 1e4):
            mix = 1 if (c, off) == (512, 0.0) else 0
            out += make_case("uniform_row", {"C": c, "c": off}, dtype, [[off] * c], mix=mix)
    return out


def large_offset(dtype: Any) -> list[Case]:
    """``c + r`` rows and ``[c, c]`` for offsets the dtype can hold."""
    out: list[Case] = []
    f = fmt(dtype)
    for c in (1e4, 1e8, 1e20, 0.9 * f.max):
        if c > f.max:
            continue  # unrepresentable in dtype
        label = "0.9max" if c == 0.9 * f.max else c
        cid = case_id("large_offset", {"c": label, "C": 3})
        r = case_rng(cid, "/offset").standard_normal(3)
        out += make_case(
            "large_offset", {"c": label, "C": 3}, dtype,
            [[c, c - 1, c - 2.5], (c + r).tolist()],
        )
        out += make_case("large_offset", {"c": label, "C": 2}, dtype, [[c, c], [-c, -c]])
    return out


def random_normal(dtype: Any) -> list[Case]:
    """N(0, sigma**2) logits; the C = 1000 anchor row of numerics §9."""
    out: list[Case] = []
    for sigma in (0.1, 1.0, 3.0, 10.0, 30.0, 100.0):
        for c in (10, 64) if sigma in (1.0, 10.0, 30.0) else (10,):
            cid = case_id("random_normal", {"sigma": sigma, "C": c})
            rows = (sigma * case_rng(cid, "/rows").standard_normal((4, c))).tolist()
            out += make_case("random_normal", {"sigma": sigma, "C": c}, dtype, rows, mix=0)
    anchor = np.random.default_rng(1).normal(0, 10, 1000)
    out += make_case(
        "random_normal", {"sigma": 10.0, "C": 1000, "row": "default_rng(1)"}, dtype,
        [anchor.tolist()], mix=0,
    )
    return out


def catastrophic_condition(dtype: Any) -> list[Case]:
    """``l_j`` close to 0: ``[0, -30]``, ``[c, c - 1e-3]`` (or the neighbour below c)."""
    out = make_case("catastrophic_condition", {"row": [0, -30]}, dtype, [[0.0, -30.0]])
    f = fmt(dtype)
    c = 1e6 if f.max > 1e6 else 1000.0
    cr = float(round_to([c], dtype)[0].astype(np.float64))
    second = float(round_to([cr - 1e-3], dtype)[0].astype(np.float64))
    if second == cr:
        second = next_toward(cr, dtype, -1)
    out += make_case(
        "catastrophic_condition", {"c": c, "second": "c-1e-3 or below"}, dtype,
        [[cr, second], [second, cr]],
    )
    out += make_case(
        "catastrophic_condition", {"row": "near_lse", "C": 4}, dtype,
        [[1.0, -30.0, -31.0, -32.0], [10.0, -25.0, -25.0, -25.0]],
    )
    return out


# --------------------------------------------------------------------------------------------
# §3 Tails and range limits
# --------------------------------------------------------------------------------------------


def dominant_logit(dtype: Any) -> list[Case]:
    """``[0, -g]``, ``[g, 0]`` and ``[0, -g, ..., -g]`` rows: lost ``log1p`` tails."""
    f = fmt(dtype)
    out: list[Case] = []
    gaps = [15.0, 16.6, 17.0, 20.0, 36.0, 37.43, 40.0, 100.0, round(f.g_1, 4), round(-f.l_sub, 4)]
    for gap in gaps:
        out += make_case(
            "dominant_logit", {"gap": gap, "C": 2}, dtype, [[0.0, -gap], [gap, 0.0]],
            sparse=[0, 0], dense=[[1, 0], [1, 0]],
        )
        out += make_case(
            "dominant_logit", {"gap": gap, "C": 8}, dtype, [[0.0] + [-gap] * 7],
            sparse=[0], dense=[[1] + [0] * 7],
        )
    for gap in (20.0, round(f.g_1, 4)):
        out += make_case(
            "dominant_logit", {"gap": gap, "C": 1000}, dtype, [[0.0] + [-gap] * 999], mix=0,
            sparse=[0],
        )
    return out


def vjp_dominant_gap(dtype: Any) -> list[Case]:
    """``[37.42994775023705, 0]`` with cotangent ``[1, 0]``; gap ``g_vjp`` per dtype."""
    out: list[Case] = []
    for label, a in (("37.42994775023705", 37.42994775023705), ("g_vjp", fmt(dtype).g_vjp)):
        out += make_case(
            "vjp_dominant_gap", {"gap": label}, dtype, [[a, 0.0], [a, 0.0], [0.0, a]],
            sparse=[0, 0, 1], dense=[[1, 0], [1, 0], [0, 1]],
            g=[[1, 0], [1, 1], [0, 1]],
        )
    return out


def two_class_scan(dtype: Any) -> list[Case]:
    """C = 2 rows ``[0, -g]`` over a sample of gaps (the exhaustive scan, scaled down)."""
    f = fmt(dtype)
    cid = case_id("two_class_scan", {"C": 2, "gaps": 48})
    top = 1.1 * -f.l_sub
    gaps = np.concatenate(
        [np.geomspace(2.0**-12, top, 24), case_rng(cid, "/gaps").uniform(0, top, 24)]
    )
    rows = [[0.0, -gap] if i % 2 == 0 else [gap, 0.0] for i, gap in enumerate(gaps.tolist())]
    return make_case("two_class_scan", {"C": 2, "gaps": 48}, dtype, rows, mix=1)


def overflow_edge(dtype: Any) -> list[Case]:
    """One entry at ``L_max ± delta`` (0.01 and one ulp) or ``2 L_max``, the others near 0."""
    f = fmt(dtype)
    lm = f.l_max
    big = [lm + 0.01, lm - 0.01, next_toward(lm, dtype, 1), next_toward(lm, dtype, -1), 2 * lm]
    return make_case(
        "overflow_edge", {"L_max": round(lm, 4), "C": 4}, dtype, [[b, 0.0, -1.0, 1.0] for b in big]
    )


def row_near_max(dtype: Any) -> list[Case]:
    """``[max, max, max]`` and TF's ``_testOverflow`` rows."""
    mx = fmt(dtype).max
    return make_case("row_near_max", {"row": "max,max,max"}, dtype, [[mx, mx, mx]]) + make_case(
        "row_near_max", {"tf": "_testOverflow"}, dtype, [[1, 1, 1, 1], [mx, 1, 2, 3]], mix=1
    )


_UNDERFLOW_GAPS = {
    "float16": (9.0, 9.7041, 12.0, 16.0, 16.6355, 17.3287, 20.0),
    "bfloat16": (87.0, 87.3365, 90.0, 92.1886, 92.8817, 95.0),
    "float32": (87.0, 87.3365, 95.0, 103.2789, 103.9721, 110.0),
    "float64": (708.0, 708.3964, 730.0, 744.4401, 745.1332, 760.0),
}


def underflow_tail(dtype: Any) -> list[Case]:
    """Gaps spanning the subnormal band and ``zero_cut``; CE targets in the tail."""
    gaps = _UNDERFLOW_GAPS[np.dtype(dtype).name]
    n = len(gaps)
    out = make_case(
        "underflow_tail", {"C": 2}, dtype, [[0.0, -g] for g in gaps],
        sparse=[i % 2 for i in range(n)], dense=[[1 - i % 2, i % 2] for i in range(n)],
    )
    out += make_case(
        "underflow_tail", {"C": 4}, dtype, [[0.0, 0.0, -g, -g] for g in gaps],
        sparse=[2 * (i % 2) for i in range(n)],
        dense=[[0.5, 0.0, 0.5, 0.0] if i % 2 else [0.0, 1.0, 0.0, 0.0] for i in range(n)],
    )
    return out


# --------------------------------------------------------------------------------------------
# §4 Infinities, NaN and masks
# --------------------------------------------------------------------------------------------


def all_neg_inf(dtype: Any) -> list[Case]:
    """Fully masked rows."""
    out: list[Case] = []
    for c in (1, 2, 1000):
        out += make_case("all_neg_inf", {"C": c}, dtype, [[NEG_INF] * c], mix=1 if c > 64 else 2)
    return out


def partial_neg_inf(dtype: Any) -> list[Case]:
    """Masks: ``[0, -inf, 1, -inf]``, causal rows, a single finite entry."""
    out = make_case(
        "partial_neg_inf", {"row": [0, "-inf", 1, "-inf"]}, dtype, [[0, NEG_INF, 1, NEG_INF]],
        sparse=[2], dense=[[0.5, 0, 0.5, 0]],
    )
    c = 6
    cid = case_id("partial_neg_inf", {"causal": True, "C": c})
    rng = case_rng(cid, "/rows")
    rows, lab, dense = [], [], []
    for i in range(c):
        rows.append(rng.standard_normal(i + 1).tolist() + [NEG_INF] * (c - i - 1))
        lab.append(int(rng.integers(0, i + 1)))
        dense.append(rng.dirichlet(np.ones(i + 1)).tolist() + [0.0] * (c - i - 1))
    out += make_case(
        "partial_neg_inf", {"causal": True, "C": c}, dtype, rows, sparse=lab, dense=dense, mix=1
    )
    out += make_case(
        "partial_neg_inf", {"row": ["-inf", 2.5, "-inf"]}, dtype, [[NEG_INF, 2.5, NEG_INF]],
        sparse=[1], dense=[[0, 1, 0]],
    )
    return out


def soft_label_neg_inf_zero_label(dtype: Any) -> list[Case]:
    """Zero soft labels at ``-inf`` logits (``0 * log 0 := 0``)."""
    return make_case(
        "soft_label_neg_inf_zero_label", {"C": 3}, dtype, [[0, NEG_INF, 1], [2, NEG_INF, 0]],
        sparse=[0, 0], dense=[[0.5, 0, 0.5], [1, 0, 0]],
    ) + make_case(
        "soft_label_neg_inf_zero_label", {"C": 4, "onehot": True}, dtype,
        [[2, NEG_INF, 0, NEG_INF]], sparse=[0], dense=[[1, 0, 0, 0]],
    )


def neg_inf_at_target(dtype: Any) -> list[Case]:
    """Sparse targets and positive soft labels at ``-inf`` logits; labels of both signs there."""
    out = make_case(
        "neg_inf_at_target", {"C": 3}, dtype,
        [[0, NEG_INF, 1], [0, NEG_INF, 1], [NEG_INF, 3, NEG_INF]],
        sparse=[1, 0, 0], dense=[[0.2, 0.3, 0.5], [0.5, 0.5, 0], [0.5, 0.25, 0.25]],
    )
    out += make_case(
        "neg_inf_at_target", {"C": 3, "labels": "signed"}, dtype,
        [[0, NEG_INF, 1], [NEG_INF, 0, NEG_INF]],
        sparse=[0, 1], dense=[[0.5, -0.5, 1], [1, 0, -1]],
    )
    return out


def pos_inf(dtype: Any) -> list[Case]:
    """``+inf`` entries, targets on and off them."""
    return make_case(
        "pos_inf", {"C": 2}, dtype, [[INF, 0], [INF, NEG_INF], [0, INF]], sparse=[0, 1, 0]
    ) + make_case("pos_inf", {"C": 3}, dtype, [[0, INF, 1], [INF, INF, 0]], sparse=[1, 2])


def nan_in_row(dtype: Any) -> list[Case]:
    """NaN first, middle, last, at the maximum, with ``±inf``, whole row."""
    rows = [
        [NAN, 0, 1, 2, 3],
        [0, 1, NAN, 2, 3],
        [0, 1, 2, 3, NAN],
        [0, 1, 2, NAN, 1],
        [NAN, NEG_INF, 0, NEG_INF, 1],
        [NAN, INF, 0, 1, 2],
        [NAN] * 5,
    ]
    return make_case("nan_in_row", {"C": 5}, dtype, rows)


def masked_large_values(dtype: Any) -> list[Case]:
    """Finite additive masks: ``-1e9`` and ``finfo.min`` (``-65504`` in float16)."""
    f = fmt(dtype)
    masks: list[tuple[str, float]] = [("finfo.min", -f.max)]
    if f.max > 1e9:
        masks.append(("-1e9", -1e9))
    else:
        masks.append(("-1e4", -1e4))
    out: list[Case] = []
    for label, m in masks:
        cid = case_id("masked_large_values", {"mask": label, "C": 6})
        r = case_rng(cid, "/rows").standard_normal((2, 6))
        row0 = r[0].tolist()
        row0[1] = row0[3] = m
        other = masks[0][1] if m != masks[0][1] else masks[1][1]
        row3 = r[1].tolist()
        row3[0], row3[5] = m, other
        out += make_case(
            "masked_large_values", {"mask": label, "C": 6}, dtype,
            [row0, [0.5, m, m, m, m, m], [m] * 6, row3],
            sparse=[0, 0, 2, 2], dense=[[0.5, 0, 0.5, 0, 0, 0], [1, 0, 0, 0, 0, 0], None,
                                        [0, 0.25, 0.25, 0.25, 0.25, 0]],
        )
    return out


# --------------------------------------------------------------------------------------------
# §5 Shapes
# --------------------------------------------------------------------------------------------


def single_class(dtype: Any) -> list[Case]:
    """C = 1 (every finite logit): softmax 1, log_softmax +0, gradients 0."""
    f = fmt(dtype)
    values = [0.0, -3.0, 1e4, f.max, -f.max, f.min_sub]
    return make_case(
        "single_class", {"x": "0,-3,1e4,max,-max,subnormal"}, dtype, [[v] for v in values],
        sparse=[0] * 6, dense=[[1], [-1], [0.5], [2], [0], [1]],
    ) + make_case(
        "single_class", {"tf": "testSingleClass"}, dtype, [[1], [-1], [0], [1]], mix=0,
        sparse=[0] * 4, dense=[[-1], [0], [1], [1]],
    )


def empty_axis(dtype: Any) -> list[Case]:
    """C = 0: empty softmax, LSE -inf per row; cross-entropy must raise."""
    return make_case(
        "empty_axis", {"shape": "3x0"}, dtype, [[], [], []], n_classes=0, mix=0,
        sparse=[0, 0, 0], errors=LOSS_FUNCTIONS,
    )


def empty_batch(dtype: Any) -> list[Case]:
    """N = 0: shape (0, C); CE 'sum' 0 and 'mean' NaN."""
    out: list[Case] = []
    for reduction in ("none", "sum", "mean"):
        ops = API_FUNCTIONS if reduction == "none" else ("cross_entropy", "cross_entropy_grad")
        if reduction == "none":
            ops = tuple(op for op in ops if op != "cross_entropy_grad")
        out += make_case(
            "empty_batch", {"shape": "0x4", "reduction": reduction}, dtype, [], n_classes=4,
            mix=0, ops=ops, ce_kwargs={"reduction": reduction},
            ce_grad_kwargs={"reduction": reduction},
        )
    return out


# --------------------------------------------------------------------------------------------
# §6 Labels and loss options
# --------------------------------------------------------------------------------------------


def labels_out_of_range(dtype: Any) -> list[Case]:
    """Invalid sparse labels: the call must raise (or give NaN rows for the bad labels)."""
    ops = ("sparse_softmax_cross_entropy", "sparse_softmax_cross_entropy_grad", "cross_entropy")
    out = make_case(
        "labels_out_of_range", {"tf": "labels=4,3,0,-1"}, dtype,
        [[1, 1, 1, 1], [1, 1, 1, 1], [1, 2, 3, 4], [1, 2, 3, 4]], mix=0,
        sparse=[4, 3, 0, -1], ops=ops, errors=ops,
    )
    for bad in (4, -1, 2**31, 2**62):
        out += make_case(
            "labels_out_of_range", {"label": bad, "C": 4}, dtype, [[0.5, -1, 2, 0]],
            sparse=[bad], ops=ops, errors=ops,
        )
    return out


def _weights(family: str, dtype: Any, c: int, zeros: bool) -> np.ndarray:
    w = case_rng(family, "/weights").uniform(0.5, 2.0, c)
    if zeros:
        w[1] = w[4 % c] = 0.0
    return round_to(w, dtype)


def all_ignored(dtype: Any) -> list[Case]:
    """Every target equal to ``ignore_index``; partly ignored batches."""
    family = "all_ignored"
    c, n = 5, 4
    x = round_to(case_rng(family, "/x").standard_normal((n, c)), dtype)
    w = _weights(family, dtype, c, zeros=False)
    out: list[Case] = []
    for ii in (-100, 1):
        for weighted in (False, True):
            opts: dict[str, Any] = {"ignore_index": ii} if ii != -100 else {}
            if weighted:
                opts["weight"] = w
            for reduction in ("mean", "sum", "none"):
                params = {"ignore_index": ii, "weight": weighted, "reduction": reduction}
                out.append(_torch_case(
                    family, {**params, "ignored": "all"}, dtype, x,
                    np.full(n, ii, dtype=np.int64), {**opts, "reduction": reduction},
                ))
                partly = np.array([ii, 2, ii, 0 if ii != 0 else 3], dtype=np.int64)
                out.append(_torch_case(
                    family, {**params, "ignored": "partly"}, dtype, x, partly,
                    {**opts, "reduction": reduction},
                ))
    return out


def label_smoothing_weight_ignore(dtype: Any) -> list[Case]:
    """PyTorch's option formula: smoothing x weights (with zeros) x ignored rows x reduction."""
    family = "label_smoothing_weight_ignore"
    n, c = 6, 5
    x = round_to(case_rng(family, "/x").standard_normal((n, c)), dtype)
    index = np.array([0, 3, -100, 4, 2, -100], dtype=np.int64)
    probs = round_to(case_rng(family, "/probs").dirichlet(np.ones(c), n), dtype)
    w = _weights(family, dtype, c, zeros=True)
    out: list[Case] = []
    for eps in (0.0, 0.1, 0.5, 1.0):
        for weighted in (False, True):
            for reduction in ("none", "mean", "sum"):
                for kind, target in (("index", index), ("prob", probs)):
                    opts: dict[str, Any] = {"label_smoothing": eps, "reduction": reduction}
                    if weighted:
                        opts["weight"] = w
                    params = {"eps": eps, "weight": weighted, "reduction": reduction,
                              "target": kind}
                    out.append(_torch_case(family, params, dtype, x, target, opts))
    out.append(_torch_case(
        family, {"eps": 1.5, "error": "eps>1"}, dtype, x, index,
        {"label_smoothing": 1.5}, error=True,
    ))
    out.append(_torch_case(
        family, {"target": "prob", "ignore_index": 0, "error": "ignore_index>=0"}, dtype, x,
        probs, {"ignore_index": 0}, error=True,
    ))
    return out


def soft_labels_off_simplex(dtype: Any) -> list[Case]:
    """Dense labels with zero rows, negative entries, sums of 2 and 0.5."""
    labels: list[Sequence[float] | None] = [
        [0, 0, 0, 0],
        [-0.5, 1, 0.5, 0],
        [1, 1, 0, 0],
        [0.25, 0.25, 0, 0],
        [-1, 0, 0, 0],
        [0.5, -0.25, 0.25, 0.5],
    ]
    cid = case_id("soft_labels_off_simplex", {"C": 4})
    rows = case_rng(cid, "/rows").standard_normal((len(labels), 4)).tolist()
    return make_case(
        "soft_labels_off_simplex", {"C": 4}, dtype, rows, dense=labels, mix=0
    ) + make_case(
        "soft_labels_off_simplex", {"tf": "testSingleClass"}, dtype, [[1], [-1], [0], [1]],
        mix=0, dense=[[-1], [0], [1], [1]],
    )


# --------------------------------------------------------------------------------------------
# §7 Low precision (scaled down)
# --------------------------------------------------------------------------------------------


def long_row_low_precision(dtype: Any) -> list[Case]:
    """Two rows of C = 1000 (scaled down from 32k-256k) and a mean-reduced CE."""
    cid = case_id("long_row_low_precision", {"C": 1000})
    rows = case_rng(cid, "/rows").standard_normal((2, 1000)) * np.array([[1.0], [3.0]])
    return make_case(
        "long_row_low_precision", {"C": 1000}, dtype, rows.tolist(), mix=0,
        ce_kwargs={"reduction": "mean"},
    )


def tied_max_low_precision(dtype: Any) -> list[Case]:
    """Ties at the maximum and zero rows (gradients of log_softmax and CE)."""
    out: list[Case] = []
    for c in (2, 64, 1000):
        out += make_case(
            "tied_max_low_precision", {"row": "zeros", "C": c}, dtype, [[0.0] * c],
            mix=0 if c > 64 else 2,
        )
    out += make_case("tied_max_low_precision", {"row": [1, 1, 0]}, dtype, [[1, 1, 0]])
    out += make_case("tied_max_low_precision", {"row": [2, 2, 2, -1]}, dtype, [[2, 2, 2, -1]])
    return out


def large_array_grad_fp16(dtype: Any) -> list[Case]:
    """Gradient of ``log_softmax(x).sum()`` over one row of 1024 (scaled down from 2**16)."""
    cid = case_id("large_array_grad_fp16", {"C": 1024})
    row = case_rng(cid, "/row").standard_normal(1024).tolist()
    return make_case(
        "large_array_grad_fp16", {"C": 1024}, dtype, [row], mix=0, g=[[1.0] * 1024],
        ops=("log_softmax_vjp", "logsumexp_grad", "sparse_softmax_cross_entropy_grad"),
    )


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
# Closed-form expectations (cases.md, numerics.md; values computed independently with mpmath
# at 2000 bits from the closed forms given in each description, then rounded to float64)
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
    _kv("float32 log_softmax([0,-20]) = [-log1p(e^-20), -20 - log1p(e^-20)] (cases.md §3)",
        "log_softmax", (_a([[0, -20]], _F32),), [[-2.061153620314381e-09, -20.000000002061153]]),
    _kv("softmax([0, fl(ln 2)]) = [1/(1+e^x), e^x/(1+e^x)] rounds to [1/3, 2/3]",
        "softmax", (_a([[0.0, math.log(2)]]),), [[1 / 3, 2 / 3]]),
    _kv("log_softmax VJP of [37.42994775023705, 0], g=[1,0]: [p1, -p1] (numerics §4)",
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
