"""Scoring an implementation that raised: the exception's name, and whether raising is accepted
(error_expected cases; convention cases of a family that accepts it; an error elsewhere)."""

from __future__ import annotations

import re
from typing import Any

from harness.planning.cases import expectations_of
from harness.scoring.fields import (
    CONVENTION_DIFFERS,
    DEVICE_ASSERT,
    ERROR,
    PASS,
    empty_fields,
)
from harness.vocabulary import CONVENTION, ERROR_EXPECTED

_EXC_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?::|$)")


def _exception_name(raised: str) -> str:
    """``"ValueError: labels ..."``, or a traceback ending so, -> ``"ValueError"``."""
    lines = [ln for ln in raised.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        m = _EXC_LINE.match(line)
        if m:
            return m.group(1).rsplit(".", 1)[-1]
    return "an exception"


def _last_line(raised: str) -> str:
    return ([ln for ln in raised.strip().splitlines() if ln.strip()] or ["no message"])[-1].strip()


def score_exception(*, op: str, pass_: str, dtype: str, raised: str, case_status: str,
                    family: str, device_error: bool = False) -> dict[str, Any]:
    """Metric fields for an implementation that raised: accepted where an error is expected.

    ``device_error``: the exception is a device error that poisons the process (a CUDA
    device-side assert, an illegal memory access: the runner's sticky errors). It is verdict
    ``device_assert`` wherever it happens, also where raising is accepted.
    """
    status = case_status
    did = f"raises {_exception_name(raised)}"
    if device_error:
        return empty_fields(verdict=DEVICE_ASSERT, convention=did, follows_convention=False,
                             score_message=f"device error that poisons the process: "
                                           f"{_last_line(raised)}")
    if status == ERROR_EXPECTED:
        return empty_fields(verdict=PASS, convention=did, follows_convention=True,
                             convention_reference="raises or NaN row")
    if status == CONVENTION:
        accepted = expectations_of(family).raising_accepted
        return empty_fields(verdict=PASS if accepted else CONVENTION_DIFFERS, convention=did,
                             follows_convention=accepted)
    return empty_fields(verdict=ERROR,
                         score_message=f"raised where a value was expected: {_last_line(raised)}")
