"""The report's input: the records of one or several run directories, ready to summarise.

Everything comes from ``harness.store.load`` (one typed row per record) and each run's
``run.json`` (``harness.store.read_run``), both upgraded by the store to its schema version;
nothing a run stored is recomputed here (the roofline share, the device's copy roofline and
which case families are adversarial are the run's own). Runs from several machines merge:
every record carries a ``machine`` label (the host name, made unique by the machine
fingerprint where two hosts share a name) and a ``platform`` (machine and device), which every
page shows. Where two runs hold a record with
the same key on the same machine, the run named last wins, as in ``harness.store.compare``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness import store as results
from harness.vocabulary import (
    FAILURE_VERDICTS,
    NOT_RUN_VERDICTS,
    SEVERITY_RANK,
    THROUGHPUT_FAMILY,
    VERDICT_RANK,
)

__all__ = [
    "THROUGHPUT_FAMILY",
    "ImplInfo",
    "ReportData",
    "RunInfo",
    "ce_kind",
    "load_report_data",
    "framework_version",
    "mode_of",
    "version_key",
]

# Statuses (and verdicts) of tasks that did not run: unsupported, unavailable, skipped.
NOT_RUN: tuple[str, ...] = NOT_RUN_VERDICTS
# Record fields the pages read (worst_row, counts and samples_s are not shown).
KEEP = ("implementation", "framework", "op", "pass", "device", "dtype", "case", "case_family",
        "case_status", "shape", "status", "message", "verdict", "accuracy_class", "max_ulp",
        "p99_ulp", "bound_ratio", "limit_ratio", "worst_index", "expected", "exact", "got",
        "convention", "convention_reference", "score_message", "run_id", "peak_bytes_method",
        "synthetic", "median_s", "iqr_s", "min_s", "mean_s", "stddev_s", "gbps", "copy_gbps",
        "device_copy_gbps", "roofline_fraction", "framework_roofline_fraction", "peak_bytes",
        "bytes_moved", "first_call_s", "rounds", "iterations", "threads", "severity",
        "norm_ulp", "norm_ratio", "componentwise", "normwise", "decided_by", "special_verdict",
        "special_severity", "max_ulp_nonzero", "zero_abs_err")
CE_OPS = ("sparse_softmax_cross_entropy", "softmax_cross_entropy")
# Timing fields the timing runner writes besides results.TIMING_FIELDS (numbers, or absent).
TIMING_NUMBERS = ("median_s", "iqr_s", "min_s", "mean_s", "stddev_s", "gbps", "copy_gbps",
                  "device_copy_gbps", "roofline_fraction", "framework_roofline_fraction",
                  "peak_bytes", "bytes_moved", "first_call_s", "rounds", "iterations",
                  "threads")


def mode_of(name: str) -> str:
    """The execution mode in an implementation name: the part after '@', else "eager"."""
    return name.rpartition("@")[2] if "@" in name else "eager"


def ce_kind(name: str) -> str:
    """"composed" for -log(softmax(x)) built from separate ops, else "fused" (one loss call,
    or a log-softmax-based formula)."""
    return "composed" if "composed" in name.lower() else "fused"


@dataclass(frozen=True)
class RunInfo:
    """One run directory: its run.json and the machine label its records carry."""

    index: int
    path: Path
    run: Mapping[str, Any]
    machine: str

    @property
    def env(self) -> Mapping[str, Any]:
        env = self.run.get("environment") or {}
        return env if isinstance(env, Mapping) else {}

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = self.run.get("meta") or {}
        return meta if isinstance(meta, Mapping) else {}

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id") or self.path.name)

    @property
    def suite(self) -> str:
        return str(self.run.get("suite") or "")

    @property
    def adversarial_families(self) -> tuple[str, ...]:
        """The case families this run marks adversarial (run.json ``meta.families``)."""
        return results.adversarial_families(self.run)

    def hardware(self, device: str) -> str:
        """What ``device`` is on this machine, in words."""
        env = self.env
        if device == "cpu":
            model = env.get("cpu_model") or "unknown CPU"
            count = env.get("cpu_count")
            return f"{model}, {count} CPUs" if count else str(model)
        gpu = env.get("gpu_model") or "unknown GPU"
        driver = env.get("gpu_driver")
        return f"{gpu}, driver {driver}" if driver else str(gpu)


@dataclass(frozen=True)
class ImplInfo:
    """An implementation's registration as the run recorded it (run.json meta)."""

    name: str
    op: str
    framework: str
    description: str = ""
    dtypes: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    differentiable: bool | None = None
    source: str = ""

    @property
    def mode(self) -> str:
        return mode_of(self.name)


@dataclass
class ReportData:
    """All records (deduplicated, sorted, with ``machine``/``platform``/``run_index``) and the
    runs they came from."""

    runs: tuple[RunInfo, ...]
    records: pd.DataFrame
    implementations: dict[str, ImplInfo]
    platforms: dict[str, str] = field(default_factory=dict)  # platform -> hardware in words
    raw: pd.DataFrame | None = None  # the runs as results.load gives them (for compare)
    # Where runs hold one framework in several versions on one machine: the records of every
    # version (``records`` keeps one per key, the run named last), prepared like ``records``.
    versions: pd.DataFrame | None = None
    # what several pages derive alike (the leaderboard, the cross-entropy pairs), made once
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def accuracy(self) -> pd.DataFrame:
        """Accuracy and stability records (everything that is not a timing record)."""
        return self.records[self.records["case_family"] != THROUGHPUT_FAMILY]

    @cached_property
    def timing(self) -> pd.DataFrame:
        """Timing records that measured something (status ok and a median time)."""
        frame = self.records[(self.records["case_family"] == THROUGHPUT_FAMILY)]
        frame = frame[(frame["status"] == "ok") & frame["median_s"].notna()].copy()
        frame["elements"] = [_elements(s) for s in frame["shape"]]
        return frame

    @cached_property
    def adversarial_families(self) -> tuple[str, ...]:
        """The case families any of the runs marks adversarial, in the runs' order."""
        return tuple(dict.fromkeys(f for run in self.runs for f in run.adversarial_families))

    @cached_property
    def has_timing(self) -> bool:
        return bool(len(self.timing))

    def run_of(self, index: int) -> RunInfo:
        return self.runs[index]

    @property
    def synthetic_count(self) -> int:
        """Records marked ``"synthetic": true`` in the input (test fixtures)."""
        if "synthetic" not in self.records.columns:
            return 0
        return int((self.records["synthetic"] == True).sum())  # noqa: E712  (object column)


def _elements(shape: Any) -> int:
    if isinstance(shape, (list, tuple)) and shape:
        total = 1
        for n in shape:
            total *= int(n)
        return total
    return 0


def _machine_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A short, unique label per distinct machine: the host name, plus the fingerprint where
    two different machines share a host name."""
    hosts: dict[str, set[str]] = {}
    keys = []
    for run in runs:
        env = run.get("environment") or {}
        host = str(env.get("hostname") or "unknown-host")
        fp = str(env.get("machine_fingerprint") or "")
        keys.append((host, fp))
        hosts.setdefault(host, set()).add(fp)
    return [host if len(hosts[host]) == 1 else f"{host}#{fp[:6] or '?'}" for host, fp in keys]


def _impls(runs: Iterable[RunInfo], records: pd.DataFrame) -> dict[str, ImplInfo]:
    found: dict[str, ImplInfo] = {}
    for run in runs:
        for item in run.meta.get("implementations") or []:
            if not isinstance(item, Mapping) or "name" not in item or item["name"] in found:
                continue
            found[str(item["name"])] = ImplInfo(
                name=str(item["name"]), op=str(item.get("op", "")),
                framework=str(item.get("framework", "")),
                description=str(item.get("description") or ""),
                dtypes=tuple(map(str, item.get("dtypes") or ())),
                devices=tuple(map(str, item.get("devices") or ())),
                options=tuple(map(str, item.get("options") or ())),
                differentiable=item.get("differentiable"),
                source=str(item.get("source") or ""))
    # records of implementations the run.json does not describe (older or edited runs)
    seen = records.drop_duplicates("implementation")
    for name, op, framework in zip(seen["implementation"], seen["op"], seen["framework"]):
        if name not in found:
            found[str(name)] = ImplInfo(str(name), str(op), str(framework))
    return dict(sorted(found.items()))


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the pages use, as plain numpy columns (fast to filter), plus ``outcome``
    (the verdict, or the status where there is none), its ``rank`` (vocabulary.VERDICTS order,
    -1 when not ranked), ``fails``, ``ran`` and ``sev_rank`` (the stored severity's rank on
    vocabulary.SEVERITIES, -1 when none)."""
    out = pd.DataFrame(index=frame.index)
    for name in KEEP:
        if name in frame.columns:
            column = frame[name]
            if name in TIMING_NUMBERS or pd.api.types.is_float_dtype(column.dtype):
                out[name] = pd.to_numeric(column, errors="coerce").astype("float64")
            else:
                out[name] = column.astype(object).where(column.notna(), None)
        elif name in TIMING_NUMBERS:
            out[name] = np.nan
        else:
            out[name] = None
    out["run_index"] = frame["run_index"].astype(int)
    out["version"] = frame["version"] if "version" in frame.columns else None
    out["machine"] = frame["machine"]
    out["platform"] = frame["platform"]
    outcome = out["verdict"].where(out["verdict"].notna(), out["status"])
    out["outcome"] = outcome
    out["rank"] = outcome.map(lambda v: VERDICT_RANK.get(v, -1)).astype(int)
    out["fails"] = outcome.isin(sorted(FAILURE_VERDICTS)).astype(bool)
    out["ran"] = (~out["status"].isin(NOT_RUN)).astype(bool)
    out["sev_rank"] = out["severity"].map(lambda v: SEVERITY_RANK.get(v, -1)).astype(int)
    return out


def load_report_data(paths: Sequence[str | os.PathLike[str]]) -> ReportData:
    """Load and merge run directories (``harness.store.load`` raises StoreError on a bad one)."""
    if not paths:
        raise ValueError("no run directory given")
    frames: list[pd.DataFrame] = []
    raw_runs: list[dict[str, Any]] = []
    run_paths: list[Path] = []
    for path in paths:
        # a merged run (softmax-bench merge) is shown as its parts, each with its machine
        for run_path, run, frame in results.runs_of(path):
            frame["run_index"] = len(frames)
            frames.append(frame)
            raw_runs.append(run)
            run_paths.append(run_path)
    labels = _machine_labels(raw_runs)
    runs = tuple(RunInfo(i, p, raw, labels[i])
                 for i, (p, raw) in enumerate(zip(run_paths, raw_runs)))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    raw = frame.drop(columns="run_index")
    frame["machine"] = pd.Series([labels[i] for i in frame["run_index"]], index=frame.index,
                                 dtype=object)
    frame["platform"] = frame["machine"] + " · " + frame["device"].astype(object)
    frame["version"] = _versions(runs, frame)
    versions = None
    spread = frame.dropna(subset=["version"]).groupby(["machine", "framework"])["version"]
    if len(frame) and (spread.nunique() > 1).any():
        versions = frame.drop_duplicates(subset=[*results.KEY_FIELDS, "machine", "version"],
                                         keep="last")
        versions = _prepared(versions).reset_index(drop=True)
    frame = frame.drop_duplicates(subset=[*results.KEY_FIELDS, "machine"], keep="last")
    frame = _prepared(frame)
    frame = frame.sort_values(["platform", "implementation", "op", "pass", "dtype", "case"],
                              kind="stable").reset_index(drop=True)
    platforms: dict[str, str] = {}
    for platform, run_index, device in zip(frame["platform"], frame["run_index"],
                                           frame["device"]):
        if platform not in platforms:
            platforms[str(platform)] = runs[int(run_index)].hardware(str(device))
    return ReportData(runs, frame, _impls(runs, frame), dict(sorted(platforms.items())), raw,
                      versions)


def framework_version(run: RunInfo, framework: str) -> str | None:
    """The version of ``framework`` that ``run`` recorded (run.json environment
    ``framework_versions``), or None."""
    versions = run.env.get("framework_versions") or {}
    if not isinstance(versions, Mapping):
        return None
    value = versions.get(framework)
    return None if value is None else str(value)


def _versions(runs: Sequence[RunInfo], frame: pd.DataFrame) -> pd.Series:
    """Each record's framework version, from its run's environment."""
    cache: dict[tuple[int, str], str | None] = {}
    out = []
    for index, framework in zip(frame["run_index"], frame["framework"].astype(object)):
        k = (int(index), str(framework))
        if k not in cache:
            cache[k] = framework_version(runs[k[0]], k[1])
        out.append(cache[k])
    return pd.Series(out, index=frame.index, dtype=object)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order of version strings: numbers as numbers ("1.9" < "1.15"), then text."""
    parts = re.findall(r"\d+|[A-Za-z]+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
