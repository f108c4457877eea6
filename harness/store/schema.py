"""The results store's schema: record fields, run.json's schema version and its upgrade path.

Version 2 (this one), against version 1:

- the case status is spelled ``error_expected`` (version 1 wrote ``error-expected``), and the
  record status ``skipped`` exists;
- run.json ``meta.families`` maps every case family of the run to what the run knew of it:
  ``{family: {"adversarial": bool}}`` (adversarial: the family stresses stability, the built-in
  ``stability`` suite's kind of case; reports show those families as the stability matrix).
  A family absent from the mapping is not adversarial. ``adversarial_families(run)`` reads it;
- every ok timing record carries ``device_copy_gbps``, the fastest copy measured on that device
  in the run (by any framework), ``roofline_fraction`` = ``gbps / device_copy_gbps`` (so that
  shares compare across frameworks) and ``framework_roofline_fraction`` = ``gbps / copy_gbps``
  (the share of the record's own framework's copy); run.json ``end.device_copy_gbps`` =
  ``{device: GB/s}``. Version 1 wrote ``roofline_fraction`` as the share of the framework's own
  copy.

Version 3, against version 2 (docs/scoring.md):

- every record that ran has ``severity`` (none < minor < major < critical); accuracy records
  have the two standards, ``norm_ulp``/``norm_ratio`` beside ``max_ulp``/``limit_ratio`` and
  the booleans ``componentwise``/``normwise``; ``decided_by`` (``special``, ``padding`` or
  ``none``) and, on padded cases, ``special_verdict``/``special_severity``; the display fields
  ``max_ulp_nonzero`` and ``zero_abs_err`` for elements whose exact value is 0;
- the verdict ``device_assert`` exists (a device error that poisons the process); 0s for
  subnormals in a row that lost normal values count as ``lost_subnormal``, not
  ``flushed_subnormal``.

A run directory written by an earlier version still loads: ``upgrade_run``, ``upgrade_record``
and ``upgrade_records`` bring what is read up to this version in memory; nothing on disk is
rewritten. The upgrade of a version-1 run:

- ``meta.families`` becomes ``{f: {"adversarial": True} for f in STABILITY_FAMILIES_V1}``: the
  families of the built-in ``stability`` suite as of version 1 (a version-1 run did not record
  them; any other family it holds is not adversarial). This applies to any run.json without
  ``meta.families`` (also a version-2 run written before the engine recorded it);
- per device, the fastest ``copy_gbps`` among the run's ok timing records becomes each such
  record's ``device_copy_gbps``; the stored ``roofline_fraction`` moves to
  ``framework_roofline_fraction`` and ``roofline_fraction`` becomes ``gbps / device_copy_gbps``
  (``upgrade_records``, which sees the whole run). This roofline upgrade applies to every
  record that lacks the key ``device_copy_gbps``: all of a version-1 run's, and those of a
  version-2 run written before the engine stored it. ``end.device_copy_gbps`` stays absent
  (``upgrade_run`` does not see the records); the records carry the same numbers.

The upgrade of a version-1 or version-2 record to version 3 derives what the record determines:
``severity`` from the verdict and ``limit_ratio`` (an ``inaccurate`` whose ``score_message``
names a lost tail is major), ``componentwise`` from the verdict, and ``decided_by = "none"``
for an accuracy record whose case id has no ``rows=`` (no padding). It cannot derive, and
leaves absent (null when loaded): ``norm_ulp``, ``norm_ratio``, ``normwise``,
``max_ulp_nonzero``, ``zero_abs_err`` (they need the output), ``decided_by``,
``special_verdict`` and ``special_severity`` of padded cases (which rows decided is not
stored), a lost sign within 4 times the limit (read as minor), the ``device_assert`` verdict
(a process-poisoning error on a case where raising is accepted stays ``pass``, severity none)
and the split of old ``flushed_subnormal`` counts into ``lost_subnormal``. Rescoring a run
re-judges those.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.vocabulary import (
    ERROR_EXPECTED,
    OK,
    STATUSES,
    THROUGHPUT_FAMILY,
    VERDICT_INFO,
    severity_of,
)

SCHEMA_VERSION = 3
SUPPORTED_SCHEMA_VERSIONS = frozenset({1, 2, SCHEMA_VERSION})
RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
FSYNC_INTERVAL_S = 1.0  # results.jsonl is fsynced at least this often while records arrive


@dataclass(frozen=True)
class Field:
    """One record field: name, kind (str, float, int, bool, json) and meaning."""

    name: str
    kind: str
    description: str


FIELDS: tuple[Field, ...] = (
    # identity
    Field("implementation", "str", "registry name, e.g. torch.nn.functional.softmax@compile"),
    Field("framework", "str", "numpy, scipy, torch, tensorflow, jax or a plugin's framework"),
    Field("op", "str", "softmax, log_softmax, logsumexp, softmax_cross_entropy, ..."),
    Field("pass", "str", "forward or backward"),
    Field("device", "str", "cpu or cuda"),
    Field("dtype", "str", "float16, bfloat16, float32 or float64 (the case's dtype)"),
    Field("case", "str", "case id, family[key=value,...]"),
    Field("case_family", "str", "case family (docs/cases.md)"),
    Field("case_status", "str", "scored, convention or error_expected"),
    Field("shape", "json", "input shape, a list of ints"),
    Field("status", "str", ", ".join(STATUSES)),
    Field("message", "str", "the runner's reason or error text ('' when none)"),
    # accuracy (harness.scoring)
    Field("verdict", "str", "pass, inaccurate, nan_where_finite, ... (docs/scoring.md)"),
    Field("accuracy_class", "str", "correctly_rounded, faithful, within_bound, outside_bound"),
    Field("max_ulp", "float", "largest ULP error in the output dtype"),
    Field("p99_ulp", "float", "99th percentile ULP error"),
    Field("mean_ulp", "float", "mean ULP error"),
    Field("max_rel", "float", "largest relative error"),
    Field("bound_ratio", "float", "max over rows of error / BHH bound (u of the dtype)"),
    Field("bound_ratio_f32acc", "float", "same with float32's u plus the final half-ulp "
          "(float16/bfloat16 only)"),
    Field("limit_ratio", "float", "max over elements of error / verdict limit (> 1: inaccurate)"),
    Field("ulp_limit", "float", "the verdict limit, in ulps, at the element of limit_ratio"),
    Field("sum_err_ulp", "float", "softmax: max |sum p - 1| in ulps of 1"),
    Field("grad_row_sum", "float", "backward: max |row sum - exact row sum|"),
    Field("counts", "json", "special-value classes and their counts"),
    Field("n_scored", "int", "elements that entered the ULP statistics"),
    Field("worst_index", "json", "index of the element that decided the verdict"),
    Field("worst_row", "json", "input row of that element (non-finite values as strings)"),
    Field("expected", "str", "correctly rounded value there"),
    Field("exact", "str", "exact value there, rounded to float64"),
    Field("got", "str", "the implementation's value there"),
    Field("output_dtype", "str", "dtype the implementation returned"),
    Field("convention", "str", "what the implementation did on convention rows"),
    Field("convention_reference", "str", "what the reference does there"),
    Field("follows_convention", "bool", "the reference's convention or a listed alternative"),
    Field("score_message", "str", "why the verdict is what it is"),
    Field("severity", "str", "none, minor, major or critical (docs/scoring.md §2): how bad the "
          "outcome is; null for a task that did not run"),
    Field("norm_ulp", "float", "max over rows of the largest error in the row in ulps of the "
          "row's largest exact magnitude (the normwise standard)"),
    Field("norm_ratio", "float", "norm_ulp over the ULP limit at the row's largest element "
          "(<= 1: normwise accurate)"),
    Field("componentwise", "bool", "meets the componentwise standard: the verdict is not a "
          "failure"),
    Field("normwise", "bool", "meets the normwise standard: special values right and "
          "norm_ratio <= 1"),
    Field("decided_by", "str", "which rows decided the verdict of a padded case: special (the "
          "family's own rows) or padding (the N(0,1) rows); none: the case has no padding"),
    Field("special_verdict", "str", "padded cases: the verdict of the family's own rows alone"),
    Field("special_severity", "str", "padded cases: the severity of the family's own rows "
          "alone"),
    Field("max_ulp_nonzero", "float", "largest ULP error over the elements whose exact value "
          "is not 0 (what tables show)"),
    Field("zero_abs_err", "float", "largest |error| where the exact value is 0, in units of "
          "the dtype's smallest normal number (max_ulp counts these in subnormal spacings)"),
    # timing (harness.worker.timing, docs/throughput.md; null on accuracy records)
    Field("median_s", "float", "median time per call"),
    Field("iqr_s", "float", "interquartile range of the time per call"),
    Field("rounds", "int", "timed rounds"),
    Field("gbps", "float", "bytes_moved / median_s / 1e9"),
    Field("roofline_fraction", "float", "gbps / device_copy_gbps: share of the device's copy "
          "roofline"),
    Field("peak_bytes", "int", "peak memory of one call above what was in use before it "
          "(null: see peak_bytes_method)"),
    Field("min_s", "float", "fastest round, per call"),
    Field("mean_s", "float", "mean time per call over the rounds"),
    Field("stddev_s", "float", "standard deviation of the per-call time over the rounds"),
    Field("iterations", "int", "calls per round (pytest-benchmark's calibration)"),
    Field("samples_s", "json", "raw per-call seconds of every round (round time / iterations)"),
    Field("bytes_moved", "int", "bytes one call reads and writes at least (the bytes model of "
          "docs/throughput.md)"),
    Field("copy_gbps", "float", "the copy roofline: GB/s of a plain copy measured on the same "
          "device in the same run (read + write)"),
    Field("device_copy_gbps", "float", "the device's copy roofline: the fastest copy_gbps of "
          "any framework on the same device in the same run"),
    Field("framework_roofline_fraction", "float", "gbps / copy_gbps: share of the framework's "
          "own copy"),
    Field("peak_bytes_method", "str", "how peak_bytes was measured, or why it is null"),
    Field("first_call_s", "float", "the first call alone, compilation/tracing included"),
    Field("threads", "int", "intra-op threads the framework computed with"),
    Field("timer", "str", "the timing engine, clock and sync, e.g. 'pytest-benchmark 5.3.1 "
          "perf_counter + jax.block_until_ready on each call's result'"),
    Field("wall_s", "float", "wall time of the task, scoring excluded"),
    Field("node", "str", "host name of the machine whose worker ran the task (null: it did "
          "not run: unsupported, skipped, a framework not installed)"),
    # kept outputs and rescoring (harness.store.outputs, harness.rescore, docs/scoring.md §9)
    Field("output_sha256", "str", "the implementation's raw output, kept in the run directory "
          "as outputs/<first 2 hex>/<sha256>.npz (null: not kept: larger than the run's "
          "keep_outputs_up_to, or no output)"),
    Field("rescored", "str", "set by softmax-bench rescore: output (re-judged from the kept "
          "output), record (re-judged from the record's status and message) or carried (kept "
          "as it was; rescore_reason says why)"),
    Field("rescore_reason", "str", "rescore: why a record was carried over or how it was "
          "re-judged"),
    Field("previous_verdict", "str", "rescore: the verdict the record had before"),
)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
KEY_FIELDS: tuple[str, ...] = ("implementation", "op", "pass", "case", "dtype", "device")
TIMING_FIELDS: tuple[str, ...] = ("median_s", "iqr_s", "rounds", "gbps", "roofline_fraction",
                                  "peak_bytes", "min_s", "mean_s", "stddev_s", "iterations",
                                  "samples_s", "bytes_moved", "copy_gbps", "device_copy_gbps",
                                  "framework_roofline_fraction", "peak_bytes_method",
                                  "first_call_s", "threads", "timer")
# Columns `load` adds from run.json to every row, so that several runs merge.
RUN_COLUMNS: tuple[str, ...] = ("run_id", "machine_fingerprint")
PANDAS_DTYPES = {"str": "string", "float": "float64", "int": "Int64", "bool": "boolean",
                  "json": "object"}


# Upgrade data, frozen: the case families of the built-in `stability` suite as of schema
# version 1 (harness/planning/suite_data.py STABILITY, in its order). Version-1 runs did not
# record which families are adversarial; this is what the report then took from the suite code.
# Never edit it to follow the suite: runs from version 2 on record their own families.
STABILITY_FAMILIES_V1: tuple[str, ...] = (
    "large_offset", "catastrophic_condition", "dominant_logit", "vjp_dominant_gap",
    "overflow_edge", "row_near_max", "underflow_tail", "all_neg_inf", "partial_neg_inf",
    "soft_label_neg_inf_zero_label", "neg_inf_at_target", "pos_inf", "nan_in_row",
    "masked_large_values", "empty_axis", "empty_batch", "labels_out_of_range", "all_ignored",
)


def upgrade_run(run: Mapping[str, Any]) -> dict[str, Any]:
    """run.json as this version reads it; ``schema_version_read`` keeps the version on disk."""
    read = int(run["schema_version"])
    out = {**run, "schema_version": SCHEMA_VERSION, "schema_version_read": read}
    found = out.get("meta")
    meta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if "families" not in meta:
        out["meta"] = {**meta,
                       "families": {f: {"adversarial": True} for f in STABILITY_FAMILIES_V1}}
    return out


def adversarial_families(run: Mapping[str, Any]) -> tuple[str, ...]:
    """The adversarial case families of a run (run.json ``meta.families`` as ``upgrade_run``
    leaves it), in the order the run lists them."""
    meta = run.get("meta")
    families = meta.get("families") if isinstance(meta, Mapping) else None
    if not isinstance(families, Mapping):
        return ()
    return tuple(str(name) for name, info in families.items()
                 if isinstance(info, Mapping) and info.get("adversarial") is True)


def upgrade_record(record: Mapping[str, Any], version: int) -> dict[str, Any]:
    """One record of a run written with schema ``version``, in this version's words."""
    out = dict(record)
    if version < 2 and out.get("case_status") == "error-expected":
        out["case_status"] = ERROR_EXPECTED
    if version < 3 and "severity" not in out:
        _derive_severity(out)
    return out


def _derive_severity(record: dict[str, Any]) -> None:
    """The version-3 fields that a version-1/2 record determines (module docstring)."""
    verdict = record.get("verdict")
    ratio = record.get("limit_ratio")
    ratio = float(ratio) if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) \
        else None
    message = str(record.get("score_message") or "")
    lost = "lost tail" in message or "lost value" in message
    record["severity"] = severity_of(verdict if isinstance(verdict, str) else None, ratio,
                                     lost_value=lost)
    if isinstance(verdict, str) and verdict in VERDICT_INFO:
        record["componentwise"] = not VERDICT_INFO[verdict].failure
    if record.get("case_family") != THROUGHPUT_FAMILY and record.get("status") in (
            OK, "error") and "rows=" not in str(record.get("case") or ""):
        record["decided_by"] = "none"


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and v > 0 else None


def _is_ok_timing(record: Mapping[str, Any]) -> bool:
    return record.get("status") == OK and record.get("case_family") == THROUGHPUT_FAMILY


def device_copy_gbps(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Per device, the fastest ``copy_gbps`` among the ok timing records of one run (GB/s)."""
    best: dict[str, float] = {}
    for record in records:
        copy = _positive(record.get("copy_gbps"))
        if copy is not None and _is_ok_timing(record):
            device = str(record.get("device"))
            best[device] = max(best.get(device, 0.0), copy)
    return dict(sorted(best.items()))


def upgrade_records(records: Sequence[Mapping[str, Any]], version: int) -> list[dict[str, Any]]:
    """All records of one run written with schema ``version``, in this version's words:
    ``upgrade_record`` of each, then the run-level part, the device's copy roofline, for the
    records that lack ``device_copy_gbps`` (see the module docstring)."""
    out = [upgrade_record(record, version) for record in records]
    stale = [r for r in out if "device_copy_gbps" not in r]
    if not stale:
        return out
    best = device_copy_gbps(out)
    for record in stale:
        copy = best.get(str(record.get("device"))) if _is_ok_timing(record) else None
        gbps = _positive(record.get("gbps"))
        record["framework_roofline_fraction"] = record.get("roofline_fraction")
        record["device_copy_gbps"] = copy
        record["roofline_fraction"] = gbps / copy if gbps is not None and copy else None
    return out
