"""The results store: the run directory (run.json + results.jsonl), its schema, load() and compare.

``reports`` reads runs through this package and ``harness.vocabulary`` only. ``load`` is the one
way code reads results (the records) and ``read_run`` the way it reads a run.json, both upgraded
to this schema version. The store itself imports nothing of the harness but ``harness.errors``
and ``harness.vocabulary`` (tests/test_layers.py).
"""

from harness.errors import HarnessError, StoreError
from harness.store.merge import runs_of
from harness.store.run_directory import RunDirectory, load, read_run
from harness.store.schema import (
    FIELD_BY_NAME,
    FIELDS,
    FSYNC_INTERVAL_S,
    KEY_FIELDS,
    RESULTS_FILE,
    RUN_COLUMNS,
    RUN_FILE,
    SCHEMA_VERSION,
    STABILITY_FAMILIES_V1,
    SUPPORTED_SCHEMA_VERSIONS,
    TIMING_FIELDS,
    Field,
    adversarial_families,
    device_copy_gbps,
    upgrade_record,
    upgrade_records,
    upgrade_run,
)

__all__ = [
    "FIELDS",
    "FIELD_BY_NAME",
    "FSYNC_INTERVAL_S",
    "KEY_FIELDS",
    "RESULTS_FILE",
    "RUN_COLUMNS",
    "RUN_FILE",
    "SCHEMA_VERSION",
    "STABILITY_FAMILIES_V1",
    "SUPPORTED_SCHEMA_VERSIONS",
    "TIMING_FIELDS",
    "Field",
    "HarnessError",
    "RunDirectory",
    "StoreError",
    "adversarial_families",
    "device_copy_gbps",
    "load",
    "read_run",
    "runs_of",
    "upgrade_record",
    "upgrade_records",
    "upgrade_run",
]
