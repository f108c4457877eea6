"""On-disk cache of reference results, keyed by a content hash, verified on load.

Entries are ``.npz`` files written with ``allow_pickle=False`` (never pickle), each carrying the
SHA-256 of its own arrays; a corrupt, truncated or tampered entry fails that check and is
recomputed, never trusted. The directory comes from ``SOFTMAX_BENCH_CACHE`` (``off`` disables the
cache); by default it is ``$XDG_CACHE_HOME/softmax-bench`` (``~/.cache/softmax-bench``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from references import npz

ENV = "SOFTMAX_BENCH_CACHE"


def cache_dir() -> Path | None:
    """Where entries live, or None when the cache is off."""
    setting = os.environ.get(ENV, "")
    if setting.strip().lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "softmax-bench"


def content_key(*parts: object) -> str:
    """SHA-256 over the parts; arrays contribute dtype, shape and bytes."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"array:{part.dtype.str}:{part.shape}:".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(f"{type(part).__name__}:{part!r};".encode())
    return h.hexdigest()


def _digest(arrays: dict[str, np.ndarray]) -> str:
    return content_key(*[x for name in sorted(arrays) for x in (name, arrays[name])])


def load(key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None if absent, unreadable or failing verification."""
    root = cache_dir()
    if root is None:
        return None
    path = root / key[:2] / f"{key}.npz"
    if not path.exists():
        return None
    try:
        arrays = npz.read(path)  # one reader at a time (references.npz)
        stored = str(arrays.pop("__sha256__"))
        if stored != _digest(arrays):
            raise ValueError("checksum mismatch")
        return arrays
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        path.unlink(missing_ok=True)  # recompute rather than trust a damaged entry
        return None


def store(key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write an entry atomically; a cache that cannot be written is skipped, not fatal."""
    root = cache_dir()
    if root is None:
        return
    folder = root / key[:2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        payload = dict(arrays)
        payload["__sha256__"] = np.array(_digest(arrays))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **payload)  # type: ignore[arg-type]  # numeric/str arrays: no pickle
        os.replace(tmp, folder / f"{key}.npz")
    except OSError:
        return
