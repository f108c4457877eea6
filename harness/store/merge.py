"""Merge run directories (one per machine, say) into one: ``softmax-bench merge RUN_DIR... --out``.

The merged directory is an ordinary run directory (``load``, ``compare`` and ``report`` read it)
whose records are the union of its parts':

- **Records keep where they came from**: each carries its part's ``run_id`` and
  ``machine_fingerprint`` (``load`` keeps a record's own over the run's), and run.json
  ``meta.merged_from`` keeps every part's run.json (environment, suite, times) and path.
  ``runs_of`` gives the parts back, so a report over a merged run shows each machine as the
  report over the parts does. Merging a merged run merges its parts.
- **Key**: the store's record key (implementation, op, pass, case, dtype, device) *and* the
  machine fingerprint: the same task on two machines (an A100 and an H100 are both ``cuda``) is
  two results, both kept. Within one part the last record of a key wins (``--resume`` appends).
- **Duplicates** (the same key in two parts) are removed: equal records (every field but
  ``IGNORED``: where and how long) are one record; records that differ are a **conflict**, and
  nothing is written unless ``prefer`` says which to keep: ``first`` or ``last`` (in the order
  the parts are given) or a part's path. Identical duplicates keep the last part's record, as
  ``compare`` and the report do when given several runs.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from harness.errors import StoreError
from harness.store.run_directory import (
    RunDirectory,
    _read_records,
    _read_run_json,
    frame_of,
    with_run_columns,
)
from harness.store.schema import KEY_FIELDS, upgrade_records, upgrade_run

__all__ = ["IGNORED", "MERGED_FROM", "Conflict", "MergeResult", "Part", "format_conflicts",
           "merge", "parts_of", "runs_of"]

MERGED_FROM = "merged_from"  # run.json meta key of a merged run: its parts
# Fields that say where and how long a task ran, not what it gave: duplicates may differ there.
IGNORED = frozenset({"wall_s", "node", "run_id", "machine_fingerprint"})
PREFER_ORDER = ("first", "last")


@dataclass(frozen=True)
class Part:
    """One run: its path (as given, or as recorded in a merged run), its run.json (upgraded)
    and its records (upgraded, with the run columns)."""

    path: str
    run: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id"))


@dataclass(frozen=True)
class Conflict:
    key: tuple[str, ...]  # KEY_FIELDS and the machine fingerprint
    paths: tuple[str, ...]  # the parts holding the key, in order
    fields: tuple[str, ...]  # the fields where their records differ
    records: tuple[dict[str, Any], ...]


@dataclass
class MergeResult:
    out: Path | None  # None: nothing written (unresolved conflicts)
    parts: list[Part]
    records: int = 0
    duplicates: int = 0  # equal records removed
    conflicts: list[Conflict] = field(default_factory=list)
    resolved: int = 0  # conflicts settled by ``prefer``


def _strip(run: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "schema_version_read"}


def parts_of(path: str | os.PathLike[str]) -> list[Part]:
    """The runs a run directory holds: itself, or each part of a merged run."""
    directory = Path(path)
    run = _read_run_json(directory)
    records = upgrade_records(_read_records(directory), run["schema_version_read"])
    merged = (run.get("meta") or {}).get(MERGED_FROM)
    if not merged:
        return [Part(str(path), _strip(run), with_run_columns(run, records))]
    by_run: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_run.setdefault(str(record.get("run_id")), []).append(record)
    parts = []
    for item in merged:
        part_run = _strip(upgrade_run(item["run"]))
        parts.append(Part(str(item["path"]), part_run,
                          with_run_columns(part_run, by_run.get(str(part_run["run_id"]), []))))
    return parts


def runs_of(path: str | os.PathLike[str]) -> list[tuple[Path, dict[str, Any], pd.DataFrame]]:
    """(path, run.json, records as ``load`` gives them) of each run a directory holds: one for a
    run, one per part for a merged run (the report shows each part's machine)."""
    return [(Path(p.path), upgrade_run(p.run), frame_of(p.records)) for p in parts_of(path)]


def _key(record: Mapping[str, Any]) -> tuple[str, ...]:
    return (*(str(record.get(k)) for k in KEY_FIELDS), str(record.get("machine_fingerprint")))


def _differs(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...]:
    names = sorted((set(a) | set(b)) - IGNORED)
    return tuple(n for n in names if json.dumps(a.get(n), sort_keys=True)
                 != json.dumps(b.get(n), sort_keys=True))


def merge(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
          prefer: str | None = None) -> MergeResult:
    """Merge the run directories ``paths`` into a new one at ``out`` (see the module docstring).
    With unresolved conflicts nothing is written and ``result.out`` is None."""
    if not paths:
        raise StoreError("merge needs at least one run directory")
    parts: list[Part] = []
    origin: list[str] = []  # the directory given for each part (a merged run's parts: it)
    for path in paths:
        held = parts_of(path)
        parts += held
        origin += [str(path)] * len(held)
    given = [str(p) for p in paths]
    if prefer is not None and prefer not in PREFER_ORDER and \
            os.path.normpath(prefer) not in {os.path.normpath(p) for p in given}:
        raise StoreError(f"--prefer {prefer}: expected first, last or one of the run "
                         f"directories given ({', '.join(given)})")
    result = MergeResult(None, parts)
    chosen: dict[tuple[str, ...], tuple[int, dict[str, Any]]] = {}
    candidates: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
    for index, part in enumerate(parts):
        latest: dict[tuple[str, ...], dict[str, Any]] = {}
        for record in part.records:  # within a run, the last record of a key wins
            latest[_key(record)] = record
        for key, record in latest.items():
            candidates.setdefault(key, []).append((index, record))
    for key, found in candidates.items():
        first = found[0][1]
        differing = tuple(sorted({f for _, r in found[1:] for f in _differs(first, r)}))
        if not differing:
            result.duplicates += len(found) - 1
            chosen[key] = found[-1]
            continue
        pick = _pick(found, prefer, origin)
        if pick is None:
            result.conflicts.append(Conflict(key, tuple(parts[i].path for i, _ in found),
                                             differing, tuple(r for _, r in found)))
            continue
        result.resolved += 1
        result.duplicates += len(found) - 1
        chosen[key] = pick
    if result.conflicts:
        return result
    order = sorted(chosen.values(), key=lambda item: item[0])  # parts in order, stable within
    _write(Path(out), parts, [record for _, record in order])
    result.out, result.records = Path(out), len(order)
    return result


def _pick(found: list[tuple[int, dict[str, Any]]], prefer: str | None, origin: list[str]
          ) -> tuple[int, dict[str, Any]] | None:
    if prefer == "first":
        return found[0]
    if prefer == "last":
        return found[-1]
    if prefer is not None:
        wanted = os.path.normpath(prefer)
        mine = [item for item in found if os.path.normpath(origin[item[0]]) == wanted]
        return mine[-1] if mine else None
    return None


def _union_families(parts: Iterable[Part]) -> dict[str, dict[str, Any]]:
    families: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, info in ((part.run.get("meta") or {}).get("families") or {}).items():
            adversarial = bool(isinstance(info, Mapping) and info.get("adversarial") is True)
            old = families.get(name, {}).get("adversarial", False)
            families[name] = {"adversarial": bool(old or adversarial)}
    return families


def _write(out: Path, parts: list[Part], records: list[dict[str, Any]]) -> None:
    suites = sorted({str(p.run.get("suite")) for p in parts})
    impls: dict[str, Any] = {}
    for part in parts:
        for item in (part.run.get("meta") or {}).get("implementations") or []:
            if isinstance(item, Mapping) and "name" in item:
                impls.setdefault(str(item["name"]), dict(item))
    meta = {"suite": suites[0] if len(suites) == 1 else "merged",
            "families": _union_families(parts),
            "implementations": list(impls.values()),
            # one entry per run (the same run given twice is one part: its records are keyed)
            MERGED_FROM: list({p.run_id: {"path": p.path, "run": p.run} for p in parts}.values())}
    store = RunDirectory.create(out, meta, env={})
    try:
        for record in records:
            store.append(record)
    finally:
        store.close()
    counts = Counter(str(r.get("status")) for r in records)
    store.finish({"counts": dict(sorted(counts.items())), "executor": "merge",
                  "merged_runs": list(dict.fromkeys(p.run_id for p in parts))})


def format_conflicts(conflicts: Sequence[Conflict], limit: int = 20) -> str:
    """The conflicting duplicates, one block each: the key, the parts, the differing fields."""
    lines = []
    for conflict in conflicts[:limit]:
        impl, op, pass_, case, dtype, device, machine = conflict.key
        lines.append(f"conflict: {impl} {op} {pass_} {dtype} {device} {case} "
                     f"(machine {machine[:12]})")
        for path, record in zip(conflict.paths, conflict.records):
            shown = ", ".join(f"{f}={json.dumps(record.get(f))[:40]}"
                              for f in conflict.fields[:4])
            more = f" (+{len(conflict.fields) - 4} fields)" if len(conflict.fields) > 4 else ""
            lines.append(f"  {path}: {shown}{more}")
    if len(conflicts) > limit:
        lines.append(f"... and {len(conflicts) - limit} more conflict(s)")
    return "\n".join(lines)
