"""The results store: a run directory with ``run.json`` and an append-only ``results.jsonl``.

``run.json`` says what was run, where and when (schema version, run id, suite, times, harness
version, git commit, environment). ``results.jsonl`` holds one JSON object per (implementation,
op, pass, case, dtype, device), written and flushed as soon as it is known, so a killed run
loses nothing already measured (fsynced at least once a second: a power cut loses at most the
last second) and ``--resume`` continues where it stopped. ``load`` is the
one way code reads results: a typed pandas DataFrame, one row per record. JSON only, never pickle.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.errors import StoreError
from harness.store import environment
from harness.store.schema import (
    FIELDS,
    FSYNC_INTERVAL_S,
    KEY_FIELDS,
    PANDAS_DTYPES,
    RESULTS_FILE,
    RUN_COLUMNS,
    RUN_FILE,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    upgrade_records,
    upgrade_run,
)
from harness.vocabulary import STATUSES

__all__ = ["RunDirectory", "load", "read_run"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and infinities as null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree, read from .git files (no git process); None if unknown."""
    root = start or Path(__file__).resolve().parents[2]
    git = root / ".git"
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            target = git.read_text().strip().removeprefix("gitdir:").strip()
            git = (root / target).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.removeprefix("ref:").strip()
        for base in (git, _common_dir(git)):
            ref_file = base / ref
            if ref_file.is_file():
                return ref_file.read_text().strip() or None
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name.strip() == ref:
                        return sha
    except OSError:
        return None
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    try:
        return (git / common.read_text().strip()).resolve() if common.is_file() else git
    except OSError:
        return git


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    text = json.dumps(_jsonable(data), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_run_json(path: Path, *, upgrade: bool = True) -> dict[str, Any]:
    file = path / RUN_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        kind = "does not exist" if not path.exists() else f"is not a run directory (no {RUN_FILE})"
        raise StoreError(f"{path} {kind}") from None
    except OSError as exc:
        raise StoreError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        run = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{file} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                         "the run directory is damaged") from None
    if not isinstance(run, dict):
        raise StoreError(f"{file} does not hold a JSON object; the run directory is damaged")
    version = run.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise StoreError(f"{file} has schema version {version!r}, but this softmax-bench "
                         f"({environment.harness_version()}) reads versions "
                         f"{', '.join(map(str, sorted(SUPPORTED_SCHEMA_VERSIONS)))}; use the "
                         "softmax-bench version that wrote it, or re-run the suite")
    return upgrade_run(run) if upgrade else run


def read_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's run.json, upgraded to this schema version (``upgrade_run``); raises
    ``StoreError`` when it is missing, damaged or of an unknown version."""
    return _read_run_json(Path(path))


def _loads(line: str) -> Any:
    """One JSON line: orjson (most of ``load``'s time is parsing the wide ``worst_row``
    lists), falling back to the standard library for what orjson refuses but ``json`` writes
    (``NaN``, ``Infinity``, integers beyond 64 bits), so the result is the same."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _parse_lines(file: Path, text: str) -> tuple[list[dict[str, Any]], int]:
    """Records in ``text`` and the byte length of its clean part (a torn last line dropped)."""
    records: list[dict[str, Any]] = []
    lines = text.split("\n")
    clean = 0
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        if not line.strip():
            if not last:
                clean += len(line.encode()) + 1
            continue
        try:
            record = _loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if last or (number == len(lines) - 1 and not lines[-1]):
                break  # the torn or unfinished last line of an interrupted run
            raise StoreError(f"{file}:{number} is not a JSON object ({exc}); the results file "
                             "is damaged") from None
        if last:
            break  # valid JSON without its newline: still an unfinished write, rewrite it
        records.append(record)
        clean += len(line.encode()) + 1
    return records, clean


class RunDirectory:
    """One run's directory: create or resume it, append records, finish it."""

    def __init__(self, path: Path, run: dict[str, Any]) -> None:
        self.path = path
        self._run = run
        self._fh: IO[str] | None = None
        self._synced_at = time.monotonic()

    @property
    def run_id(self) -> str:
        return str(self._run["run_id"])

    @property
    def run(self) -> dict[str, Any]:
        """A copy of run.json as last written."""
        copy: dict[str, Any] = json.loads(json.dumps(self._run))
        return copy

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    @classmethod
    def create(cls, path: str | os.PathLike[str], meta: Mapping[str, Any], *,
               env: Mapping[str, Any] | None = None) -> RunDirectory:
        """Start a new run in ``path`` (created; must be missing or empty) and write run.json.

        ``meta`` holds ``suite`` and anything else worth keeping (options, implementations);
        ``run_id`` and ``frameworks_settings`` are taken from it when present. ``env`` replaces
        ``environment.capture()`` (tests).
        """
        directory = Path(path)
        if directory.exists():
            if not directory.is_dir():
                raise StoreError(f"{directory} exists and is not a directory; choose another --out")
            if any(directory.iterdir()):
                raise StoreError(f"{directory} already holds files; use --resume to continue "
                                 "that run, or choose another --out")
        meta = dict(meta)
        run_id = str(meta.pop("run_id", "") or
                     f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}")
        settings = meta.pop("frameworks_settings", None)
        run: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "suite": meta.pop("suite", None),
            "started_at": _now(),
            "ended_at": None,
            "harness_version": environment.harness_version(),
            "git_commit": _git_commit(),
            "environment": dict(env) if env is not None else environment.capture(settings),
            "meta": meta,
        }
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(directory / RUN_FILE, run)
            (directory / RESULTS_FILE).touch()
        except OSError as exc:
            raise StoreError(f"cannot write run directory {directory}: "
                             f"{exc.strerror or exc}; choose a writable --out") from None
        return cls(directory, {**_jsonable(run), "schema_version_read": SCHEMA_VERSION})

    @classmethod
    def open_for_resume(cls, path: str | os.PathLike[str]) -> RunDirectory:
        """Reopen an interrupted run; a torn last line of results.jsonl is cut off cleanly."""
        directory = Path(path)
        # as on disk: run.json is rewritten below, and an upgrade is never written back
        run = _read_run_json(directory, upgrade=False)
        run["schema_version_read"] = run["schema_version"]
        results = directory / RESULTS_FILE
        try:
            raw = results.read_bytes() if results.exists() else b""
            _, clean = _parse_lines(results, raw.decode("utf-8", errors="replace"))
            if clean != len(raw):
                with results.open("r+b") as fh:
                    fh.truncate(clean)
                    fh.flush()
                    os.fsync(fh.fileno())
            elif not results.exists():
                results.touch()
        except OSError as exc:
            raise StoreError(f"cannot resume {directory}: {exc.strerror or exc}") from None
        run.setdefault("resumed_at", [])
        run["resumed_at"] = [*run["resumed_at"], _now()]
        store = cls(directory, run)
        store._write_run()
        return store

    def _write_run(self) -> None:
        # run.json keeps the schema version its records were first written in (a resumed
        # version-1 run stays version 1, so that load upgrades all of its records)
        on_disk = {k: v for k, v in self._run.items() if k != "schema_version_read"}
        on_disk["schema_version"] = self._run.get("schema_version_read", SCHEMA_VERSION)
        try:
            _write_json_atomic(self.path / RUN_FILE, on_disk)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path / RUN_FILE}: {exc.strerror or exc}"
                             ) from None

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one record (one JSON line), flushed to the OS before returning.

        It is fsynced when the last fsync is ``FSYNC_INTERVAL_S`` old, and on ``finish`` and
        ``close``: an fsync per record cost about 1 ms on a busy disk, under the runner's lock.

        Missing schema fields are written as null; extra fields are kept. The key fields
        (``KEY_FIELDS``) and ``status`` must be present.
        """
        missing = [k for k in (*KEY_FIELDS, "status") if record.get(k) is None]
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}: {dict(record)!r:.200}")
        if record["status"] not in STATUSES:
            raise ValueError(f"record status {record['status']!r} is not one of {STATUSES}")
        full = {f.name: None for f in FIELDS}
        full.update(_jsonable(record))
        line = json.dumps(full, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        try:
            if self._fh is None:
                self._fh = self.results_path.open("a", encoding="utf-8")
            self._fh.write(line + "\n")
            self._fh.flush()
            if time.monotonic() - self._synced_at >= FSYNC_INTERVAL_S:
                self._sync()
        except OSError as exc:
            raise StoreError(f"cannot append to {self.results_path}: {exc.strerror or exc}"
                             ) from None

    def records(self) -> Iterator[dict[str, Any]]:
        """The records written so far (a torn last line is skipped)."""
        try:
            text = self.results_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return iter(())
        except OSError as exc:
            raise StoreError(f"cannot read {self.results_path}: {exc.strerror or exc}") from None
        return iter(_parse_lines(self.results_path, text)[0])

    def finished_keys(self) -> set[tuple[str, ...]]:
        """(implementation, op, pass, case, dtype, device) of every record already stored."""
        return {tuple(str(r.get(k)) for k in KEY_FIELDS) for r in self.records()}

    def _sync(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
        self._synced_at = time.monotonic()

    def finish(self, end_meta: Mapping[str, Any] | None = None) -> None:
        """Record the end time (and ``end_meta``) in run.json, atomically; close the results."""
        self.close()
        end = dict(end_meta or {})
        settings = end.pop("frameworks_settings", None) or end.pop("framework_settings", None)
        if settings:
            env = self._run.setdefault("environment", {})
            env["frameworks_settings"] = {**env.get("frameworks_settings", {}), **settings}
        self._run["ended_at"] = _now()
        self._run["end"] = _jsonable(end)
        self._write_run()

    def close(self) -> None:
        """Fsync and close results.jsonl (appending reopens it)."""
        if self._fh is not None:
            try:
                self._sync()
            except OSError as exc:
                raise StoreError(f"cannot write {self.results_path}: {exc.strerror or exc}"
                                 ) from None
            finally:
                self._fh.close()
                self._fh = None


def _run_paths(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
               ) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)]
    return [Path(p) for p in path_or_paths]


def _read_records(directory: Path) -> list[dict[str, Any]]:
    file = directory / RESULTS_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreError(f"{file} is missing; the run directory is damaged") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {file}: {exc}") from None
    return _parse_lines(file, text)[0]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for f in FIELDS:
        if f.name not in frame.columns:
            frame[f.name] = pd.Series([None] * len(frame), dtype=object)
        dtype = PANDAS_DTYPES[f.kind]
        column = frame[f.name]
        if f.kind == "float":
            frame[f.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        elif f.kind == "int":
            frame[f.name] = pd.to_numeric(column, errors="coerce").astype("Int64")
        elif f.kind == "json":
            frame[f.name] = column.astype(object)
        else:
            frame[f.name] = column.astype(dtype)
    for name in RUN_COLUMNS:
        frame[name] = frame[name].astype("string")
    ordered = [f.name for f in FIELDS] + list(RUN_COLUMNS)
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def load(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
         ) -> pd.DataFrame:
    """All records of one or several run directories: one typed row per record.

    Every row carries its run's ``run_id`` and ``machine_fingerprint``, so runs from several
    machines merge into one table (a merged run's records carry their own: ``harness.store.merge``).
    A missing or damaged run raises ``StoreError`` naming the file.
    """
    rows: list[dict[str, Any]] = []
    for directory in _run_paths(path_or_paths):
        run = _read_run_json(directory)
        rows.extend(with_run_columns(run, upgrade_records(_read_records(directory),
                                                          run["schema_version_read"])))
    return frame_of(rows)


def with_run_columns(run: Mapping[str, Any], records: Iterable[Mapping[str, Any]]
                     ) -> list[dict[str, Any]]:
    """Records with their run's ``RUN_COLUMNS`` (``run_id``, ``machine_fingerprint``) where they
    do not carry their own (the records of a merged run do)."""
    env = run.get("environment") or {}
    extra = {"run_id": run.get("run_id"), "machine_fingerprint": env.get("machine_fingerprint")}
    return [{**record, **{k: v for k, v in extra.items() if record.get(k) is None}}
            for record in records]


def frame_of(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Records (with their run columns) as ``load`` gives them: one typed row each."""
    frame = pd.DataFrame(rows, columns=None if rows else [*(f.name for f in FIELDS),
                                                          *RUN_COLUMNS])
    return _typed(frame)
