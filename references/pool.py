"""References computed ahead, in a pool of worker processes.

A caller that knows which references it will need (a run's cases) submits them early; child
processes compute them through the normal API (so the content-addressed cache is used and
filled) while the caller does other work, and ``result(key)`` hands back a *fully materialised*
:class:`ReferenceResult`: ``hi``, ``lo``, ``direction`` and ``undecided`` are plain arrays, so
using it (``hi``, ``rounded(dtype)``, :func:`references.metrics.ulp_error`) is numpy only, never
touches mpmath's or Arb's process-global precision, and is safe from any number of threads.

No pickle of arrays: each task's inputs go to an ``.npz`` (``allow_pickle=False``) in the pool's
own temporary directory, the child gets its path and writes the result to another ``.npz``,
and returns that path. Workers start with the "forkserver" method (the parent may have
threads), or "spawn" where forkserver is missing. ``jobs=0`` computes inline in this process
(serialised by a lock: the engine's precision is process-global).

This module knows nothing about the harness or frameworks: function names are those of the
``references`` package, arguments numpy arrays, options JSON-able values.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from references import cache, npz
from references.result import ReferenceResult

FUNCTIONS = frozenset({
    "softmax", "log_softmax", "logsumexp", "softmax_cross_entropy",
    "sparse_softmax_cross_entropy", "cross_entropy", "softmax_vjp", "log_softmax_vjp",
    "logsumexp_grad", "softmax_cross_entropy_grad", "sparse_softmax_cross_entropy_grad",
    "cross_entropy_grad",
})
_RESULT_KEYS = ("hi", "lo", "direction", "undecided")
_BF16 = np.dtype(ml_dtypes.bfloat16)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _write_inputs(path: Path, args: Sequence[np.ndarray | None]) -> None:
    arrays: dict[str, np.ndarray] = {}
    kinds: list[str] = []
    for k, a in enumerate(args):
        if a is None:
            kinds.append("none")
            continue
        arr = np.asarray(a)
        if arr.dtype == _BF16:  # not an npy dtype: its bits, and the name to view them back
            kinds.append("bfloat16")
            arr = arr.view(np.uint16)
        elif arr.dtype.kind not in "biuf":
            raise TypeError(f"argument {k}: only numeric arrays can go to the pool; got dtype "
                            f"{arr.dtype}")
        else:
            kinds.append("array")
        arrays[f"a{k}"] = np.ascontiguousarray(arr)
    arrays["__kinds__"] = np.array(kinds, dtype=str)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numeric/str arrays: no pickle


def _read_inputs(path: str) -> list[np.ndarray | None]:
    data = npz.read(path)
    kinds = [str(k) for k in data["__kinds__"]]
    out: list[np.ndarray | None] = []
    for k, kind in enumerate(kinds):
        if kind == "none":
            out.append(None)
        elif kind == "bfloat16":
            out.append(data[f"a{k}"].view(_BF16))
        else:
            out.append(data[f"a{k}"])
    return out


def _options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able options back to what the API takes (lists of numbers become arrays)."""
    return {k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
            for k, v in kwargs.items()}


def _compute(function: str, args: Sequence[np.ndarray | None], kwargs: Mapping[str, Any]
             ) -> ReferenceResult:
    """The reference through the public API, fully materialised (raises like the API)."""
    import references

    res = getattr(references, function)(*args, **_options(kwargs))
    arrays = res.hi, res.lo, res.direction, res.undecided
    return ReferenceResult.materialised(res.op, *arrays, tier_counts=res.tier_counts)


def _child(function: str, in_path: str, out_path: str, kwargs_json: str,
           cache_setting: str | None = None) -> str:
    """Runs in a worker: inputs from ``in_path``, result to ``out_path``; returns that path.

    ``cache_setting`` is the submitting process's ``SOFTMAX_BENCH_CACHE`` at submit time: a
    forkserver child inherits the environment of the forkserver, started by the first pool of
    the process, not the caller's current one."""
    if cache_setting is None:
        os.environ.pop(cache.ENV, None)
    else:
        os.environ[cache.ENV] = cache_setting
    res = _compute(function, _read_inputs(in_path), json.loads(kwargs_json))
    counts = res.tier_counts
    arrays = dict(zip(_RESULT_KEYS, (res.hi, res.lo, res.direction, res.undecided),
                      strict=True))
    arrays["op"] = np.array(res.op)
    arrays["tier_names"] = np.array(list(counts), dtype=str)
    arrays["tier_rows"] = np.array(list(counts.values()), dtype=np.int64)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, out_path)
    return out_path


def _load_result(path: str) -> ReferenceResult:
    data = npz.read(path)  # in the caller's threads: one reader at a time (references.npz)
    counts = {str(n): int(c) for n, c in zip(data["tier_names"], data["tier_rows"],
                                             strict=True)}
    return ReferenceResult.materialised(str(data["op"]), data["hi"], data["lo"],
                                        data["direction"], data["undecided"],
                                        tier_counts=counts)


class ReferencePool:
    """Compute references ahead in worker processes; see the module docstring.

    ``jobs``: worker processes (None: the CPUs this process may run on; 0: inline, no
    children). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, jobs: int | None = None) -> None:
        if jobs is None:
            jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
            raise ValueError(f"jobs must be a non-negative integer or None; got {jobs!r}")
        self.jobs = jobs
        self._dir = Path(tempfile.mkdtemp(prefix="softmax-bench-references-"))
        self._executor = (ProcessPoolExecutor(max_workers=jobs, mp_context=_context())
                          if jobs else None)
        self._lock = threading.Lock()  # guards the tables below (and inline computation)
        self._compute_lock = threading.Lock()
        self._tasks: dict[str, tuple[str, list[np.ndarray | None], dict[str, Any]]] = {}
        self._futures: dict[str, Future[str]] = {}
        self._results: dict[str, ReferenceResult | Exception] = {}
        self._counts: dict[str, int] = {}
        self._counted: set[str] = set()
        self._serial = 0
        self._closed = False

    # ------------------------------------------------------------------ submitting

    def submit(self, key: str, function: str, args: Sequence[np.ndarray | None],
               kwargs: Mapping[str, Any]) -> None:
        """Start computing ``references.<function>(*args, **kwargs)`` under ``key``.

        Idempotent per key: a key already submitted is left as it is. ``kwargs`` must be
        JSON-able (numbers, strings, None, lists of numbers such as a weight vector)."""
        if function not in FUNCTIONS:
            raise ValueError(f"unknown reference function {function!r}; one of "
                             f"{', '.join(sorted(FUNCTIONS))}")
        options = dict(kwargs)
        kwargs_json = json.dumps(options)  # TypeError for anything not JSON-able
        with self._lock:
            if self._closed:
                raise RuntimeError("the reference pool is closed")
            if key in self._tasks:
                return
            arrays = [None if a is None else np.asarray(a) for a in args]
            self._tasks[key] = (function, arrays, options)
            if self._executor is None:
                return  # inline: computed on first result()
            self._serial += 1
            in_path = self._dir / f"task{self._serial}.in.npz"
            out_path = self._dir / f"task{self._serial}.out.npz"
            _write_inputs(in_path, arrays)
            self._futures[key] = self._executor.submit(_child, function, str(in_path),
                                                       str(out_path), kwargs_json,
                                                       os.environ.get(cache.ENV))

    # ------------------------------------------------------------------ results

    def result(self, key: str) -> ReferenceResult | Exception:
        """The materialised result for ``key``, waiting for it if needed.

        A ``ValueError``/``TypeError`` raised by the reference (no exact value: e.g. labels out
        of range) is returned, not raised, as the same exception type and message; any other
        failure (a crashed worker) is raised."""
        with self._lock:
            if key in self._results:
                return self._results[key]
            if key not in self._tasks:
                raise KeyError(f"no reference submitted under {key!r}")
            future = self._futures.get(key)
        path: str | None = None
        outcome: ReferenceResult | Exception | None = None
        if future is None:
            outcome = self._inline(key)
        else:
            try:
                path = future.result()
            except (ValueError, TypeError) as exc:
                outcome = exc
        with self._lock:
            if key in self._results:  # another thread (scoring the same case) got it first
                return self._results[key]
            if outcome is None:
                assert path is not None
                outcome = _load_result(path)
                for suffix in (".in.npz", ".out.npz"):
                    Path(path[: -len(".out.npz")] + suffix).unlink(missing_ok=True)
            self._results.setdefault(key, outcome)
            self._count(key, self._results[key])
            self._tasks[key] = (self._tasks[key][0], [], {})  # inputs no longer needed
            return self._results[key]

    def _inline(self, key: str) -> ReferenceResult | Exception:
        function, arrays, options = self._tasks[key]
        with self._compute_lock:
            try:
                return _compute(function, arrays, json.loads(json.dumps(options)))
            except (ValueError, TypeError) as exc:
                return exc

    def _count(self, key: str, outcome: ReferenceResult | Exception) -> None:
        if key in self._counted or not isinstance(outcome, ReferenceResult):
            return
        self._counted.add(key)
        for name, n in outcome.tier_counts.items():
            self._counts[name] = self._counts.get(name, 0) + n

    def tier_counts(self) -> dict[str, int]:
        """Rows decided by each engine tier (special, exact, binary128, arb, mpmath, undecided;
        cache: rows read from the cache) over every result collected so far, plus the finished
        ones not yet collected."""
        with self._lock:
            finished = [k for k, f in self._futures.items()
                        if k not in self._results and f.done()]
        for key in finished:
            self.result(key)
        with self._lock:
            return dict(self._counts)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Stop the workers (pending tasks are cancelled) and remove the temporary files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ReferencePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; close() is the way
        try:
            if not self._closed:
                self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


__all__ = ["FUNCTIONS", "ReferencePool"]
