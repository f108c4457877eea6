"""Arrays between the parent and the workers: ``.npz`` files, never pickle.

numpy cannot store ml_dtypes' bfloat16 natively (it would come back as opaque ``|V2``), so such
arrays travel as their uint16 bits under ``NAME@bfloat16`` and are viewed back on load."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np

from references import npz

_BF16 = np.dtype(ml_dtypes.bfloat16)
_TAG = "@bfloat16"


def save(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    payload = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype == _BF16:
            payload[name + _TAG] = arr.view(np.uint16)
        else:
            payload[name] = arr
    np.savez(path, **payload)  # type: ignore[arg-type]


def load(path: str | Path) -> dict[str, np.ndarray]:
    out = {}
    for name, arr in npz.read(path).items():  # one reader at a time: references.npz
        if name.endswith(_TAG):
            out[name[: -len(_TAG)]] = arr.view(_BF16)
        else:
            out[name] = arr
    return out
