"""Raw implementation outputs kept in a run directory, content-addressed, so that a run can be
re-judged later (``softmax-bench rescore``) without running any implementation again.

An output lives in ``RUN_DIR/outputs/<first 2 hex>/<sha256>.npz``; the record names it in its
``output_sha256`` field. The digest is the SHA-256 of ``"<dtype name>|<shape>|"`` followed by
the array's bytes in C order, so identical outputs (same dtype, shape and bits) are stored once
and a file can be checked against its name. The file is a plain ``.npz`` with one array ``out``
(bfloat16 and the other ml_dtypes formats, which numpy cannot store, as their unsigned-integer
bits under ``out@<dtype name>``, the convention of ``harness.arrays_io``); it is read with
``allow_pickle=False``. Nothing here imports the rest of the harness (tests/test_layers.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np

from harness.errors import StoreError
from references import npz

OUTPUTS_DIR = "outputs"
ARRAY = "out"
DEFAULT_KEEP_OUTPUTS_UP_TO = 65536  # elements; larger outputs are not kept (0: none)
_EXTRA_DTYPES = {name: np.dtype(getattr(ml_dtypes, name))
                 for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2")
                 if hasattr(ml_dtypes, name)}


def digest(array: np.ndarray) -> str:
    """The content address of ``array``: SHA-256 of its dtype name, shape and C-order bytes."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.name}|{','.join(map(str, a.shape))}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def output_path(run_dir: str | os.PathLike[str], sha256: str) -> Path:
    """Where the output with digest ``sha256`` lives in ``run_dir``."""
    return Path(run_dir) / OUTPUTS_DIR / sha256[:2] / f"{sha256}.npz"


def keep(array: np.ndarray, limit: int) -> bool:
    """Whether an output of ``array.size`` elements is kept under ``--keep-outputs-up-to``."""
    return limit > 0 and int(np.size(array)) <= limit


def put_output(run_dir: str | os.PathLike[str], array: np.ndarray, sha256: str | None = None
               ) -> str:
    """Store ``array`` in ``run_dir`` (once per content) and return its digest (``sha256``:
    the digest when the caller has it already)."""
    a = np.ascontiguousarray(array)
    sha = digest(a) if sha256 is None else sha256
    path = output_path(run_dir, sha)
    if path.exists():
        return sha
    if a.dtype.name in _EXTRA_DTYPES:
        payload = {f"{ARRAY}@{a.dtype.name}": a.view(f"u{a.dtype.itemsize}")}
    elif a.dtype.kind in "biufc":
        payload = {ARRAY: a}
    else:
        raise StoreError(f"cannot keep an output of dtype {a.dtype}: not a numeric array")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".out-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **payload)  # type: ignore[arg-type]
            os.replace(tmp, path)  # two writers of one content write the same bytes
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    return sha


def get_output(run_dir: str | os.PathLike[str], sha256: str) -> np.ndarray:
    """The output with digest ``sha256`` stored in ``run_dir``; ``StoreError`` when it is
    missing, unreadable or does not match its digest."""
    path = output_path(run_dir, sha256)
    try:
        arrays = npz.read(path)  # one reader at a time: references.npz
        names = list(arrays)
        if len(names) != 1 or not names[0].startswith(ARRAY):
            raise StoreError(f"{path} holds {names}, not one array '{ARRAY}'")
        name, raw = names[0], arrays[names[0]]
    except FileNotFoundError:
        raise StoreError(f"stored output {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read stored output {path}: {exc}") from None
    tag = name.partition("@")[2]
    if tag:
        if tag not in _EXTRA_DTYPES:
            raise StoreError(f"{path}: unknown dtype tag {tag!r}")
        raw = raw.view(_EXTRA_DTYPES[tag])
    if digest(raw) != sha256:
        raise StoreError(f"stored output {path} does not match its digest; the run directory "
                         "is damaged")
    array: np.ndarray = raw
    return array


def copy_outputs(src_dir: str | os.PathLike[str], dst_dir: str | os.PathLike[str],
                 digests: set[str]) -> int:
    """Copy the outputs named by ``digests`` from one run directory to another (hard links
    where the file system allows); those missing in ``src_dir`` are skipped. Returns how many
    are in ``dst_dir`` afterwards."""
    copied = 0
    for sha in sorted(digests):
        src, dst = output_path(src_dir, sha), output_path(dst_dir, sha)
        if not src.exists():
            continue
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        except OSError as exc:
            raise StoreError(f"cannot copy {src} to {dst}: {exc.strerror or exc}") from None
        copied += 1
    return copied


__all__ = ["DEFAULT_KEEP_OUTPUTS_UP_TO", "OUTPUTS_DIR", "copy_outputs", "digest", "get_output",
           "keep", "output_path", "put_output"]
