"""What the case generators produce: (op, pass) calls, family cases and per-op case inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.vocabulary import (
    BACKWARD,
    CASE_STATUSES,
    DENSE_CE,
    FORWARD,
    OP_NAMES,
    PASSES,
    SPARSE_CE,
    TORCH_CE,
)

STATUSES = CASE_STATUSES



Call = tuple[str, str]
"""An (op, pass) pair: one call of one op's forward or backward reference."""

ALL_CALLS: tuple[Call, ...] = tuple((op, FORWARD) for op in OP_NAMES) + tuple(
    (op, BACKWARD) for op in OP_NAMES
)
LOSS_CALLS: tuple[Call, ...] = tuple(
    (op, p) for p in PASSES for op in (DENSE_CE, SPARSE_CE, TORCH_CE)
)

@dataclass(frozen=True)
class CallSpec:
    """Options of one (op, pass) call, and whether it must raise."""

    options: Mapping[str, Any] = field(default_factory=dict)
    expect_error: bool = False


@dataclass(frozen=True, eq=False)
class FamilyCase:
    """One case of a family in one dtype: its arrays once, and the (op, pass) calls it makes.

    ``targets`` is int64 (N,) class indices, or a float array of ``x``'s shape (probability
    targets of ``cross_entropy``). ``status`` overrides the family's status for this case.
    """

    case_id: str
    family: str
    dtype: str
    x: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    cotangent: np.ndarray | None
    calls: Mapping[Call, CallSpec]
    unsupported: str | None = None
    status: str | None = None
    own_rows: int | None = None  # padded (pad_rows): the family's rows; the rest are N(0, 1)


@dataclass(frozen=True, eq=False)
class CaseInput:
    """One case for one op in one dtype: what the harness runs (forward and backward).

    ``inputs`` is keyed by the op's input names (harness.ops); ``cotangent`` is the backward
    cotangent of ops with ``random_cotangent`` (None: ones); ``status`` is the forward status
    and ``backward_status`` the backward one where it differs (None: the same). An unsupported
    case keeps its (unusable) rounded inputs only so that its shape is known. ``own_rows``: the
    case was padded to a shared shape (``pad_rows``); its first ``own_rows`` rows are the
    family's and the rest N(0, 1) padding, so the scorer can say which rows decided a verdict
    (None: no padding).
    """

    case_id: str
    family: str
    op: str
    dtype: str
    inputs: dict[str, np.ndarray]
    options: dict[str, Any]
    cotangent: np.ndarray | None
    status: str
    unsupported: str | None = None
    backward_status: str | None = None
    own_rows: int | None = None  # padded: rows [0, own_rows) are the family's, the rest padding

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the logits, (N, C)."""
        return tuple(self.inputs["x"].shape)

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    @property
    def n_classes(self) -> int:
        return self.shape[-1]

    def status_for(self, pass_: str) -> str:
        """The status of one pass ("forward" or "backward")."""
        if pass_ == BACKWARD and self.backward_status is not None:
            return self.backward_status
        return self.status
