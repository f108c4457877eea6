"""Run directories for the report tests, derived from the committed fixture run.

``FIXTURE`` is a small real run (tests/reports/make_fixture.py; its timing records are
synthetic and marked so). The helpers below copy it with changes, into a temporary directory:
another machine, no timing, an accuracy regression, or many more records. Every derived run is
written through plain JSON, like a run copied off another machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURE = HERE / "data" / "run"

Record = dict[str, Any]


def read_run(path: Path = FIXTURE) -> tuple[dict[str, Any], list[Record]]:
    run = json.loads((path / "run.json").read_text(encoding="utf-8"))
    lines = (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return run, [json.loads(line) for line in lines if line.strip()]


def write_run(path: Path, run: dict[str, Any], records: Iterable[Record]) -> Path:
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    (path / "results.jsonl").write_text(
        "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records), encoding="utf-8")
    return path


def derived_run(path: Path, *, edit_run: Callable[[dict[str, Any]], None] | None = None,
                edit: Callable[[Record], Record | None] | None = None) -> Path:
    """A copy of the fixture; ``edit`` may change a record or drop it (None)."""
    run, records = read_run()
    if edit_run is not None:
        edit_run(run)
    if edit is not None:
        records = [r for r in map(edit, records) if r is not None]
    return write_run(path, run, records)


def gpu_machine_run(path: Path) -> Path:
    """The fixture as if measured on another machine, on its GPU (synthetic: same numbers)."""

    def machine(run: dict[str, Any]) -> None:
        env = run["environment"]
        env.update(hostname="gpu-box", gpu_model="NVIDIA H100 80GB HBM3", gpu_driver="550.54",
                   gpus=[{"name": "NVIDIA H100 80GB HBM3", "driver": "550.54",
                          "memory": 85520809984}], gpu_reason=None,
                   machine_fingerprint="0123456789abcdef")
        run["run_id"] = "20261127T000000Z-gpubox"
        run["meta"]["device"] = "cuda"

    return derived_run(path, edit_run=machine, edit=lambda r: {**r, "device": "cuda"})


def accuracy_only_run(path: Path) -> Path:
    """The fixture without its timing records."""
    return derived_run(path, edit=lambda r: None if r["case_family"] == "throughput" else r)


REGRESSED = ("numpy.softmax_shifted", "forward", "float32")


def regressed_run(path: Path) -> Path:
    """The fixture with numpy.softmax_shifted float32 made 1000 times worse (a regression)."""

    def worse(r: Record) -> Record:
        if (r["implementation"], r["pass"], r["dtype"]) == REGRESSED and r.get("max_ulp"):
            return {**r, "max_ulp": r["max_ulp"] * 1000, "verdict": "inaccurate",
                    "accuracy_class": "outside_bound"}
        return r

    def new_id(run: dict[str, Any]) -> None:
        run["run_id"] = "20261127T999999Z-regress"

    return derived_run(path, edit_run=new_id, edit=worse)


def multiplied_run(path: Path, copies: int) -> Path:
    """The fixture with every case repeated ``copies`` times under new case ids: the shape of a
    bigger suite (more cases per implementation), for size and speed checks."""
    run, records = read_run()
    out = [{**r, "case": f"{r['case']}#{k}"} if k else r
           for k in range(copies) for r in records]
    return write_run(path, run, out)
