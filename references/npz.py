"""Reading ``.npz`` files safely from several threads of one process.

NumPy parses every array header with ``ast.literal_eval``, and CPython 3.11's AST constructor
keeps its recursion-depth counter in interpreter-wide state: two threads parsing at once can
fail with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). The
harness reads worker outputs and pooled references from two engine threads at once, and the
project's CI hit exactly that. Every ``.npz`` read of ``references`` and ``harness`` goes through
:func:`read`, which holds one process-wide lock while it parses and reads (plain, uncompressed
archives: the lock is held for a copy from the page cache).
"""

from __future__ import annotations

import os
import threading

import numpy as np

_LOCK = threading.Lock()


def read(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` (never pickled objects), in archive order.

    Raises what ``np.load`` raises (``OSError``, ``ValueError``, ``zipfile.BadZipFile``, ...)."""
    with _LOCK, np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


__all__ = ["read"]
