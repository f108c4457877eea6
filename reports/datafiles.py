"""The data beside the site: ``data/`` holds every record as CSV and as Parquet, and each
run's run.json.

The records are the runs as ``harness.store.load`` gives them (every record of every run, before
the report drops a record that a later run repeats), with the report's ``machine`` label added.
Columns keep the store's types: numbers as float64 or nullable int64, flags as nullable
booleans, text as strings. The JSON-valued fields (``shape``, ``worst_index``, ``worst_row``,
``counts``, ``samples_s`` and the like: ``harness.store.FIELDS`` kind ``json``) are JSON text in
both files, as in results.jsonl. Parquet is written by pyarrow (zstd, no pandas index) and
without timestamps, so the same runs give the same bytes.
"""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from harness import store as results
from reports.data import ReportData
from reports.pages.common import slug

__all__ = ["CSV", "PARQUET", "data_files", "records_frame", "run_file"]

CSV = "data/records.csv"
PARQUET = "data/records.parquet"
JSON_FIELDS = tuple(f.name for f in results.FIELDS if f.kind == "json")


def run_file(index: int, run_id: str) -> str:
    """Where run ``index``'s run.json goes in the site."""
    return f"data/runs/{index:02d}-{slug(run_id, 40)}/run.json"


def _json_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # NaN/inf inside, big ints: the standard library writes them
        return json.dumps(value)


def records_frame(data: ReportData) -> pd.DataFrame:
    """Every record, typed, with its machine label; JSON-valued fields as JSON text."""
    raw = data.raw if data.raw is not None else pd.DataFrame()
    frame = raw.copy()
    machines = {run.run_id: run.machine for run in data.runs}
    frame.insert(0, "machine", pd.array([machines.get(str(r)) if r is not None and
                                         r is not pd.NA else None for r in frame["run_id"]],
                                        dtype="string") if len(frame) else
                 pd.array([], dtype="string"))
    for name in frame.columns:
        column = frame[name]
        if name in JSON_FIELDS or column.dtype == object:
            frame[name] = pd.array([_json_text(v) for v in column], dtype="string")
    return frame.reset_index(drop=True)


def _parquet(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def data_files(data: ReportData) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """The files of ``data/`` and, for the overview, what each holds."""
    frame = records_frame(data)
    files = {CSV: frame.to_csv(index=False, lineterminator="\n").encode("utf-8"),
             PARQUET: _parquet(frame)}
    links = [{"path": CSV, "what": f"every record ({len(frame)}), CSV",
              "bytes": len(files[CSV])},
             {"path": PARQUET, "what": f"every record ({len(frame)}), Parquet (types kept)",
              "bytes": len(files[PARQUET])}]
    for run in data.runs:
        path = run_file(run.index, run.run_id)
        body = {k: v for k, v in run.run.items() if k != "schema_version_read"}
        files[path] = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        links.append({"path": path, "what": f"run.json of {run.run_id} ({run.machine})",
                      "bytes": len(files[path])})
    return files, links
