"""The results store's schema: record fields, run.json's schema version and its upgrade path.

Version 2 (this one) spells the case status ``error_expected`` (version 1 wrote
``error-expected``) and knows the status ``skipped``. A run directory written by an earlier
version still loads: ``upgrade_run`` and ``upgrade_record`` bring what is read up to this version
in memory; nothing on disk is rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.vocabulary import ERROR_EXPECTED, STATUSES

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = frozenset({1, SCHEMA_VERSION})
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
    Field("case_family", "str", "case family (cases.md)"),
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
    # timing (harness.worker.timing, docs/throughput.md; null on accuracy records)
    Field("median_s", "float", "median time per call"),
    Field("iqr_s", "float", "interquartile range of the time per call"),
    Field("rounds", "int", "timed rounds"),
    Field("gbps", "float", "bytes_moved / median_s / 1e9"),
    Field("roofline_fraction", "float", "gbps / copy_gbps: share of the measured copy roofline"),
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
    Field("peak_bytes_method", "str", "how peak_bytes was measured, or why it is null"),
    Field("first_call_s", "float", "the first call alone, compilation/tracing included"),
    Field("threads", "int", "intra-op threads the framework computed with"),
    Field("timer", "str", "the timing engine, clock and sync, e.g. 'pytest-benchmark 5.3.1 "
          "perf_counter + jax.block_until_ready on each call's result'"),
    Field("wall_s", "float", "wall time of the task, scoring excluded"),
)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
KEY_FIELDS: tuple[str, ...] = ("implementation", "op", "pass", "case", "dtype", "device")
TIMING_FIELDS: tuple[str, ...] = ("median_s", "iqr_s", "rounds", "gbps", "roofline_fraction",
                                  "peak_bytes", "min_s", "mean_s", "stddev_s", "iterations",
                                  "samples_s", "bytes_moved", "copy_gbps", "peak_bytes_method",
                                  "first_call_s", "threads", "timer")
# Columns `load` adds from run.json to every row, so that several runs merge.
RUN_COLUMNS: tuple[str, ...] = ("run_id", "machine_fingerprint")
PANDAS_DTYPES = {"str": "string", "float": "float64", "int": "Int64", "bool": "boolean",
                  "json": "object"}


def upgrade_run(run: dict[str, Any]) -> dict[str, Any]:
    """run.json as this version reads it; ``schema_version_read`` keeps the version on disk."""
    read = int(run["schema_version"])
    return {**run, "schema_version": SCHEMA_VERSION, "schema_version_read": read}


def upgrade_record(record: Mapping[str, Any], version: int) -> dict[str, Any]:
    """One record of a run written with schema ``version``, in this version's words."""
    out = dict(record)
    if version < 2 and out.get("case_status") == "error-expected":
        out["case_status"] = ERROR_EXPECTED
    return out
