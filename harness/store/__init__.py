"""The results store: the run directory (run.json + results.jsonl), its schema, load() and compare.

``reports`` reads runs through this package and ``harness.vocabulary`` only. ``load`` is the one
way code reads results.
"""

from harness.errors import HarnessError, StoreError
from harness.store.run_directory import RunDirectory, load
from harness.store.schema import (
    FIELD_BY_NAME,
    FIELDS,
    FSYNC_INTERVAL_S,
    KEY_FIELDS,
    RESULTS_FILE,
    RUN_COLUMNS,
    RUN_FILE,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    TIMING_FIELDS,
    Field,
    upgrade_record,
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
    "SUPPORTED_SCHEMA_VERSIONS",
    "TIMING_FIELDS",
    "Field",
    "HarnessError",
    "RunDirectory",
    "StoreError",
    "load",
    "upgrade_record",
    "upgrade_run",
]
