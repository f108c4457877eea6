"""Explicit rows: a case whose arrays are written out in the suite file itself (docs/suites.md).

The worst-case search (harness.planning.search) writes its findings as ``explicit_rows``
entries of ``worst-cases.toml``, so that ``softmax-bench run --suite DIR/worst-cases.toml``
reruns exactly the rows it found. An array is a string ``DTYPE:SHAPE:DATA``: the dtype name
(``float16``, ``bfloat16``, ``float32``, ``float64`` or ``int64``), the shape as ``NxC`` (or
``N``), and the little-endian bytes, zlib-compressed and base64-encoded. That keeps every bit
(NaN payloads, signed zeros, subnormals) and needs no file beside the suite and no pickle.

Rows with a +inf logit, or with every logit -inf, are the special rows of this family: on a
case whose ``status`` is ``convention`` they are judged like ``pos_inf`` and ``all_neg_inf``
(the reference's special values or one of those families' accepted conventions).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from harness.planning.cases.dtypes import _frozen, as_dtype, case_id
from harness.planning.cases.expectations import (
    F64,
    Alternative,
    Expectations,
    RowMask,
    fully_masked_rows,
    rows_with_pos_inf,
)
from harness.planning.cases.records import CallSpec, FamilyCase
from harness.vocabulary import (
    CONVENTION,
    DENSE_CE,
    FORWARD,
    LOGSUMEXP,
    PASSES,
    SCORED,
    SPARSE_CE,
)

EXPLICIT_FAMILY = "explicit_rows"
ARRAY_DTYPES = ("float16", "bfloat16", "float32", "float64", "int64")


class EncodingError(ValueError):
    """An explicit array string that cannot be decoded."""


def encode_array(a: np.ndarray) -> str:
    """``DTYPE:SHAPE:DATA`` (see the module docstring)."""
    a = np.ascontiguousarray(a)
    name = a.dtype.name
    if name not in ARRAY_DTYPES:
        raise EncodingError(f"cannot encode dtype {name}; expected one of "
                            f"{', '.join(ARRAY_DTYPES)}")
    raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() if a.dtype.itemsize > 1 \
        else a.tobytes()
    shape = "x".join(str(n) for n in a.shape)
    return f"{name}:{shape}:{base64.b64encode(zlib.compress(raw, 9)).decode('ascii')}"


def decode_array(text: str) -> np.ndarray:
    """The array of an ``encode_array`` string; EncodingError with one line if malformed."""
    try:
        name, shape_text, data = text.split(":", 2)
        if name not in ARRAY_DTYPES:
            raise EncodingError(f"unknown dtype {name!r}; expected one of "
                                f"{', '.join(ARRAY_DTYPES)}")
        shape = tuple(int(n) for n in shape_text.split("x")) if shape_text else ()
        raw = zlib.decompress(base64.b64decode(data.encode("ascii"), validate=True))
        dt = as_dtype(name)
        a = np.frombuffer(raw, dtype=dt.newbyteorder("<") if dt.itemsize > 1 else dt)
        return a.astype(dt).reshape(shape)
    except EncodingError:
        raise
    except (ValueError, zlib.error) as exc:
        raise EncodingError(f"not an encoded array ('DTYPE:NxC:base64'): {exc}") from None


# --------------------------------------------------------------------------- expectations
def _special(op: str, x: F64, inputs: Mapping[str, Any]) -> RowMask:
    return fully_masked_rows(op, x, inputs) | rows_with_pos_inf(op, x, inputs)


def _merged(*maps: Mapping[tuple[str, str], tuple[Alternative, ...]]
            ) -> Mapping[tuple[str, str], tuple[Alternative, ...]]:
    out: dict[tuple[str, str], tuple[Alternative, ...]] = {}
    for m in maps:
        for key, alts in m.items():
            out[key] = out.get(key, ()) + tuple(alts)
    return MappingProxyType(out)


def explicit_expectations(*others: Expectations) -> Expectations:
    """Fully masked rows and rows with +inf, with the alternatives of ``others`` (the
    ``all_neg_inf`` and ``pos_inf`` families' expectations)."""
    return Expectations(special_rows=_special,
                        alternatives=_merged(*(o.alternatives for o in others)))


def row_status(op: str, pass_: str, x: np.ndarray) -> str:
    """The status of an explicit row: ``convention`` where it has a +inf logit or no finite
    logit (except logsumexp forward, whose +inf is scored, as in ``pos_inf``), else scored."""
    x64 = np.asarray(x).astype(np.float64).reshape(-1, np.shape(x)[-1] if np.ndim(x) else 1)
    special = bool(np.any(_special(op, x64, {})))
    if not special or (op == LOGSUMEXP and pass_ == FORWARD and not np.any(
            fully_masked_rows(op, x64, {}))):
        return SCORED
    return CONVENTION


# ------------------------------------------------------------------------------ the family
def explicit_case(family: str, name: str, dtype: Any, x: np.ndarray, *,
                  labels: np.ndarray | None = None, targets: np.ndarray | None = None,
                  cotangent: np.ndarray | None = None, status: str | None = None) -> FamilyCase:
    """A family case of exactly these arrays (no rounding, no mixed rows). Its calls: every
    pass of softmax, log_softmax and logsumexp, dense CE with ``labels``, sparse CE with
    ``targets``."""
    ops = ["softmax", "log_softmax", LOGSUMEXP]
    if labels is not None:
        ops.append(DENSE_CE)
    if targets is not None:
        ops.append(SPARSE_CE)
    calls = {(op, p): CallSpec() for op in ops for p in PASSES}
    def frozen(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else _frozen(np.array(a))

    return FamilyCase(case_id(family, {"name": name}), family, as_dtype(dtype).name,
                      _frozen(np.array(x)), frozen(labels), frozen(targets), frozen(cotangent),
                      calls, None, status or None)


def explicit_rows(dtype: Any, *, name: str = "", x: str = "", labels: str = "",
                  targets: str = "", cotangent: str = "", status: str = "") -> list[FamilyCase]:
    """Rows given in the suite file (``DTYPE:NxC:DATA`` strings), run exactly as written."""
    if not x:
        return []
    logits = decode_array(x)
    if logits.dtype != as_dtype(dtype) or logits.ndim != 2:
        return []  # an entry's rows are in one dtype: the other dtypes have no case
    arrays = {k: decode_array(v) if v else None
              for k, v in (("labels", labels), ("targets", targets), ("cotangent", cotangent))}
    if not name:
        name = hashlib.sha256(x.encode()).hexdigest()[:12]
    return [explicit_case(EXPLICIT_FAMILY, name, dtype, logits, labels=arrays["labels"],
                          targets=arrays["targets"], cotangent=arrays["cotangent"],
                          status=status or None)]
