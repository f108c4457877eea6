"""Case builders: a family case from special rows (mixed with N(0, 1) rows), or from options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.planning.cases.dtypes import (
    UNREPRESENTABLE,
    _dirichlet,
    _frozen,
    _round,
    as_dtype,
    case_id,
    case_rng,
)
from harness.planning.cases.records import ALL_CALLS, Call, CallSpec, FamilyCase
from harness.vocabulary import BACKWARD, ERROR_EXPECTED, FORWARD, TORCH_CE


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
    calls: Iterable[Call] = ALL_CALLS,
    errors: Iterable[Call] = (),
    ce_options: Mapping[str, Any] | None = None,
    ce_grad_options: Mapping[str, Any] | None = None,
    status: str | None = None,
) -> FamilyCase:
    """One case: special ``rows`` with ``mix`` N(0, 1) rows around them (one before).

    ``sparse``/``dense``/``g`` give the labels and cotangents of the special rows (``None``
    entries, or the whole argument omitted, mean random); the mixed rows get random ones.
    ``cross_entropy`` runs with ``ce_options`` (default reduction "none") forward and
    ``ce_grad_options`` (default: PyTorch's defaults) backward.
    """
    dt = as_dtype(dtype)
    cid = case_id(family, params)
    rng = case_rng(cid)
    c = n_classes if n_classes is not None else (len(rows[0]) if rows else 0)
    before = 1 if mix else 0
    order: list[int | None] = [None] * before + list(range(len(rows))) + [None] * (mix - before)
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
    xa, bad_x = _round(np.array(x, dtype=np.float64).reshape(shape), dt)
    ya, bad_y = _round(np.array(y, dtype=np.float64).reshape(shape), dt)
    ga, bad_g = _round(np.array(cot, dtype=np.float64).reshape(shape), dt)
    la = np.array(lab, dtype=np.int64)
    options = {
        (TORCH_CE, FORWARD): dict(ce_options) if ce_options is not None else {"reduction": "none"},
        (TORCH_CE, BACKWARD): dict(ce_grad_options) if ce_grad_options is not None else {},
    }
    errs = set(errors)
    specs = {call: CallSpec(options.get(call, {}), call in errs) for call in calls}
    return FamilyCase(
        cid, family, dt.name, _frozen(xa), _frozen(ya), _frozen(la), _frozen(ga), specs,
        UNREPRESENTABLE if bad_x or bad_y or bad_g else None, status,
    )


def options_case(
    family: str,
    params: Mapping[str, Any],
    dtype: Any,
    x: np.ndarray,
    target: np.ndarray,
    options: Mapping[str, Any],
    *,
    error: bool = False,
) -> FamilyCase:
    """A ``cross_entropy``-only case with options (the backward call unless reduction is none)."""
    calls: list[Call] = [(TORCH_CE, FORWARD)]
    if options.get("reduction", "mean") != "none":
        calls.append((TORCH_CE, BACKWARD))
    for value in options.values():
        if isinstance(value, np.ndarray):
            _frozen(value)
    specs = {call: CallSpec(dict(options), error) for call in calls}
    return FamilyCase(
        case_id(family, params), family, as_dtype(dtype).name, _frozen(x), None, _frozen(target),
        None, specs, status=ERROR_EXPECTED if error else None,
    )


def _with(params: dict[str, Any], key: str, value: int | None, default: int) -> dict[str, Any]:
    """Name a size knob (``N`` rows, ``mix`` rows) in the case id where it is not the default.

    So a case id always determines the inputs, and the default ids stay short.
    """
    return params if value is None or value == default else {**params, key: value}
