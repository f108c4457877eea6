"""The one-line command that reproduces one record: the same case, implementation and pass.

``softmax-bench run`` selects suites, implementations and dtypes but not a single case, so the
command is a ``python -c`` one-liner on the harness's own API: it regenerates the case from the
run's suite (case ids are deterministic), converts the inputs through the framework adapter as
the worker does (``CaseInput.inputs`` holds the op's inputs in call order), runs the forward
pass or the VJP, and prints the output at ``worst_index``
(the element the verdict was decided on). Building the string runs nothing: the report only
writes it down. It needs softmax-bench (and the framework) installed where it is pasted, and a
suite file path is the one the run was given.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["reproduce_command"]


def _lit(value: str) -> str:
    """A Python string literal (JSON's double-quoted form is one)."""
    return json.dumps(value)


def _index(worst_index: Any) -> str | None:
    if not isinstance(worst_index, (list, tuple)) or not worst_index:
        return None
    try:
        parts = [str(int(i)) for i in worst_index]
    except (TypeError, ValueError):
        return None
    return ",".join(parts) + ("," if len(parts) == 1 else "")


def reproduce_command(record: Mapping[str, Any], suite: str) -> str:
    """``python -c '...'`` that reruns ``record``'s implementation on its case and prints the
    output at its ``worst_index`` (the whole output when the record has none)."""
    impl, device = str(record["implementation"]), str(record["device"])
    key = ",".join(_lit(str(record[k])) for k in ("case", "dtype", "op"))
    if record.get("pass") == "backward":
        run = "y=a.backward(i,x,c.options,c.cotangent)"
    else:
        run = "y=a.to_numpy(a.forward(i,x,c.options))"
    index = _index(record.get("worst_index"))
    code = ";".join([
        "from harness.planning import cases as C,suites as S",
        "from harness.worker import loop as W",
        "from harness.worker.adapters import get_adapter as G",
        f"c=next(c for c in C.generate(S.get_suite({_lit(suite)})) "
        f"if (c.case_id,c.dtype,c.op)==({key}))",
        f"i=next(i for i in W.all_implementations()[0] if i.name=={_lit(impl)})",
        "a=G(i.framework)",
        "x=[a.to_framework(v,c.dtype if v.dtype.kind==\"f\" else str(v.dtype),"
        f"{_lit(device)}) for v in c.inputs.values()]",
        run,
        f"print(y[{index}])" if index else "print(y)",
    ])
    return f"python -c {shlex.quote(code)}"
