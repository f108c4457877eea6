"""A suite's entries -> per-op :class:`CaseInput` records (with padding to shared shapes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from harness.ops import OPS
from harness.planning.cases.dtypes import _frozen, case_rng, round_to
from harness.planning.cases.families import FAMILIES
from harness.planning.cases.records import CaseInput, FamilyCase
from harness.vocabulary import BACKWARD, ERROR_EXPECTED, FORWARD, OP_NAMES, TORCH_CE

if TYPE_CHECKING:
    from harness.planning.suites import Suite


def pad_rows(case: FamilyCase, rows: int) -> FamilyCase:
    """``case`` with N(0, 1) rows appended up to ``rows`` rows (random labels, soft labels and
    cotangents, as ``make_case``'s mixed rows), under the id ``family[...,rows=R]``.

    A suite sets this (an entry's ``rows``) so that many families share a few shapes: compiled
    modes (``@compile``, ``@jit``, ``@xla``, JAX's op-by-op dispatch) compile once per shape,
    which dominates a small suite's run time. Empty cases (no rows or no classes) and cases
    with ``rows`` rows or more are returned unchanged. The padded case is a case of its own,
    reproducible from its id like any other; its special rows keep their positions, and
    ``own_rows`` says how many of its first rows are the family's (the scorer tells a failure of
    the padding from one of the family's rows).
    """
    n, c = case.x.shape
    if n == 0 or c == 0 or n >= rows:
        return case
    cid = f"{case.case_id[:-1]}{',' if case.case_id[-2] != '[' else ''}rows={rows}]"
    rng = case_rng(cid, "/pad")
    extra = rows - n
    x = np.concatenate([case.x, round_to(rng.standard_normal((extra, c)), case.dtype)])
    labels = targets = cotangent = None
    if case.labels is not None:
        labels = np.concatenate([case.labels,
                                 round_to(rng.dirichlet(np.ones(c), extra), case.dtype)])
    if case.targets is not None:
        if case.targets.dtype.kind in "iu":
            more = rng.integers(0, c, extra).astype(case.targets.dtype)
        else:
            more = round_to(rng.dirichlet(np.ones(c), extra), case.dtype)
        targets = np.concatenate([case.targets, more])
    if case.cotangent is not None:
        cotangent = np.concatenate([case.cotangent,
                                    round_to(rng.standard_normal((extra, c)), case.dtype)])
    return FamilyCase(
        cid, case.family, case.dtype, _frozen(x), _maybe_frozen(labels), _maybe_frozen(targets),
        _maybe_frozen(cotangent), case.calls, case.unsupported, case.status,
        case.own_rows if case.own_rows is not None else n,
    )


def _maybe_frozen(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else _frozen(a)


def case_inputs(case: FamilyCase, ops: Iterable[str] | None = None) -> Iterator[CaseInput]:
    """The per-op records of one family case, for ``ops`` (default: all the family's ops)."""
    family = FAMILIES[case.family]
    wanted = set(family.ops if ops is None else ops) & set(family.ops)
    for op in OP_NAMES:
        if op not in wanted:
            continue
        fwd, bwd = case.calls.get((op, FORWARD)), case.calls.get((op, BACKWARD))
        if fwd is None and bwd is None:
            continue
        spec = OPS[op]
        inputs = {"x": case.x}
        for name in spec.inputs[1:]:
            value = case.labels if name == "labels" else case.targets
            assert value is not None, f"{case.case_id}: {op} needs {name}"
            inputs[name] = value
        first = fwd if fwd is not None else bwd
        options = dict(first.options) if op == TORCH_CE and first is not None else {}
        statuses = []
        for pass_, call in ((FORWARD, fwd), (BACKWARD, bwd)):
            if any(c is not None and c.expect_error for c in (fwd, call)):
                statuses.append(ERROR_EXPECTED)
            else:
                statuses.append(case.status or family.status_of(op, pass_))
        yield CaseInput(
            case.case_id, case.family, op, case.dtype, inputs, options,
            case.cotangent if spec.random_cotangent else None, statuses[0], case.unsupported,
            statuses[1] if statuses[1] != statuses[0] else None, case.own_rows,
        )


def generate(suite: Suite) -> Iterator[CaseInput]:
    """Every case of a suite, per op, in a deterministic order (entry, dtype, case, op).

    Cases are built lazily, one family and dtype at a time. A (case id, dtype, op) that an
    earlier entry already produced is not repeated (the id determines the inputs).
    """
    seen: set[tuple[str, str, str]] = set()
    for entry in suite.entries:
        family = FAMILIES[entry.family]
        for dtype in entry.dtypes or family.dtypes:
            for case in family.cases(dtype, **entry.params):
                if entry.rows is not None:
                    case = pad_rows(case, entry.rows)
                for record in case_inputs(case, entry.ops or family.ops):
                    key = (record.case_id, record.dtype, record.op)
                    if key not in seen:
                        seen.add(key)
                        yield record
