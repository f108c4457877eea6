"""The search space: structured rows, described by the features that decide a softmax kernel's
error (docs/search.md §1), and the moves of the local refinement.

A candidate is a dict of JSON-able parameters (its *genome*); :func:`build` turns it into the
arrays of one row, deterministically: the same parameters give the same bits on every machine
(the only randomness is ``numpy.random.default_rng(params["rng"])``). Values are built in
float64 and rounded once into the dtype (``harness.planning.cases.round_to``); a refinement
move may also set single coordinates to exact dtype values (``edits``: index -> bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.planning.cases import as_dtype, round_to, thresholds

__all__ = ["MAX_C", "WIDTHS", "Params", "Row", "as_dtype", "build", "exhaustive",
           "gap_thresholds", "neighbour", "sample", "sample_c", "sample_random"]
from harness.vocabulary import DENSE_CE, SOFTMAX, SPARSE_CE

Params = dict[str, Any]

MAX_C = 2**17 + 1  # longest row the search builds (the issue asks for at least 2**17)
WIDTHS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)  # vector widths and block sizes
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


@dataclass(frozen=True)
class Row:
    """One candidate's arrays, in the dtype (labels: int64 class indices or dense in dtype)."""

    x: np.ndarray  # (1, C)
    targets: np.ndarray | None
    labels: np.ndarray | None
    cotangent: np.ndarray | None


def gap_thresholds(dtype: str) -> dict[str, float]:
    """The gaps (top logit minus the rest) where softmax kernels change behaviour."""
    f = thresholds(dtype)
    return {
        "log1p_cliff": f.g_1,  # p ln 2: log-softmax's log1p(tail) rounds to 0 beyond it
        "vjp_cliff": f.g_vjp,
        "ln_max": f.l_max,  # exp(gap) overflows beyond it
        "ln_min_normal": -f.ln_min_normal,  # exp(-gap) becomes subnormal
        "ln_min_sub": -f.l_sub,  # exp(-gap) is the smallest subnormal
        "zero_cut": -f.zero_cut,  # exp(-gap) rounds to 0
        "ln2": math.log(2.0),
        "one": 1.0,
    }


# ------------------------------------------------------------------------------------ sampling
def _choice(rng: np.random.Generator, items: Any, p: Any = None) -> Any:
    seq = list(items)
    return seq[int(rng.choice(len(seq), p=p))]


def sample_c(rng: np.random.Generator) -> int:
    """A row length: small, 2**k +- 1, a multiple of a vector width plus a remainder, or
    log-uniform up to MAX_C (wide rows are rarer: their reference is the slow part)."""
    kind = rng.random()
    if kind < 0.35:
        return int(rng.integers(1, 34))
    if kind < 0.6:
        k = int(_choice(rng, range(1, 18), p=_k_weights()))
        return max(1, 2**k + int(rng.integers(-1, 2)))
    if kind < 0.88:
        w = int(_choice(rng, WIDTHS))
        return w * int(rng.integers(1, 9)) + int(rng.integers(0, w))
    return int(round(math.exp(rng.uniform(math.log(2), math.log(MAX_C)))))


def _k_weights() -> np.ndarray:
    w = np.array([1.0 if k <= 12 else 0.35 for k in range(1, 18)])
    return w / w.sum()


def _position(rng: np.random.Generator, c: int) -> int:
    """First, last, around a block boundary, or anywhere."""
    kind = rng.random()
    if kind < 0.2 or c == 1:
        return 0
    if kind < 0.4:
        return c - 1
    if kind < 0.7:
        w = [w for w in WIDTHS if w < c] or [1]
        b = int(_choice(rng, w)) * int(rng.integers(1, 9))
        return int(min(c - 1, max(0, b + int(rng.integers(-1, 2)))))
    return int(rng.integers(0, c))


def sample(rng: np.random.Generator, op: str, dtype: str, backward: bool) -> Params:
    """One structured candidate: every feature drawn from its distribution."""
    f = thresholds(dtype)
    c = sample_c(rng)
    p: Params = {"C": c, "rng": int(rng.integers(0, 2**31))}
    p["base"] = _choice(rng, ("normal", "uniform", "const"), p=(0.6, 0.3, 0.1))
    p["scale"] = float(10.0 ** rng.uniform(-4, 4)) if rng.random() < 0.85 else float(
        10.0 ** rng.uniform(4, math.log10(f.max)))
    gapped = rng.random() < 0.6
    if rng.random() < 0.5:
        p["offset"] = 0.0
    else:
        # with a gap, an offset the gap survives (ulp(offset) well below the gap)
        top = math.log10(f.max) if not gapped else math.log10(
            gap_thresholds(dtype)["zero_cut"] * 2.0 ** (f.p - 4))
        mag = 10.0 ** rng.uniform(-2, top) if (rng.random() < 0.8 or gapped) else f.max * (
            1 - 10.0 ** rng.uniform(-6, 0))
        p["offset"] = float(mag if rng.random() < 0.7 else -mag)
    if gapped:
        gaps = gap_thresholds(dtype)
        name = "random" if rng.random() < 0.4 else _choice(rng, list(gaps))
        if name == "random":
            wide = 2 * gaps["zero_cut"]  # log-uniform (small gaps) or uniform (large ones)
            g = float(10.0 ** rng.uniform(-3, math.log10(wide)) if rng.random() < 0.5
                      else rng.uniform(0, wide))
        else:
            g = gaps[name] * (1 + _choice(rng, (0.0, 1e-3, -1e-3, 0.02, -0.02, 0.1, -0.1)))
        p["gap"], p["gap_kind"] = float(g), name
        p["dom"] = _position(rng, c)
        p["ties"] = int(_choice(rng, (0, 0, 0, 1, 2, 7))) if c > 2 else 0
    if rng.random() < 0.2 and c > 1:
        p["mask"] = _choice(rng, ("-inf", "-max"))
        p["mask_where"] = _choice(rng, ("prefix", "suffix", "random", "all_but_one"))
        p["mask_n"] = int(rng.integers(1, c))
    if rng.random() < 0.08:
        p["special"] = _choice(rng, ("nan", "+inf", "-inf"))
        p["special_pos"] = _position(rng, c)
    if op in (SPARSE_CE, DENSE_CE):
        p["label"] = _choice(rng, ("argmax", "other", "argmin", "last", "first"))
    if backward and op in (SOFTMAX, "log_softmax"):
        p["cot"] = _choice(rng, ("normal", "ones", "onehot", "large", "tiny"))
    return p


def sample_random(rng: np.random.Generator, op: str, dtype: str, backward: bool) -> Params:
    """Plain random sampling (the benchmark's baseline): i.i.d. normal rows with a log-uniform
    scale over the same range and a log-uniform length, random labels and cotangents."""
    f = thresholds(dtype)
    c = int(round(math.exp(rng.uniform(0, math.log(4096)))))
    p: Params = {"C": c, "rng": int(rng.integers(0, 2**31)), "base": "normal",
                 "scale": float(10.0 ** rng.uniform(-4, math.log10(f.max))), "offset": 0.0}
    if op in (SPARSE_CE, DENSE_CE):
        p["label"] = "random"
    if backward and op in (SOFTMAX, "log_softmax"):
        p["cot"] = "normal"
    return p


# ------------------------------------------------------------------------------------ building
def _label_index(kind: str, x: np.ndarray, rng: np.random.Generator) -> int:
    c = x.size
    finite = np.where(np.isnan(x) | (x == -np.inf), -np.inf, x)
    if kind == "argmax":
        return int(np.argmax(finite))
    if kind == "argmin":
        pick = np.where(finite == -np.inf, np.inf, finite)
        return int(np.argmin(pick)) if np.isfinite(pick).any() else 0
    if kind == "last":
        return c - 1
    if kind == "first":
        return 0
    if kind == "other" and c > 1:
        top = int(np.argmax(finite))
        return int((top + 1 + rng.integers(0, c - 1)) % c)
    return int(rng.integers(0, c))


def build(params: Params, op: str, dtype: str) -> Row:
    """The arrays of a candidate (see the module docstring)."""
    dt = as_dtype(dtype)
    f = thresholds(dtype)
    c = int(params["C"])
    rng = np.random.default_rng(int(params["rng"]))
    scale = float(params.get("scale", 1.0))
    base = params.get("base", "normal")
    if base == "normal":
        rest = rng.standard_normal(c) * scale
    elif base == "uniform":
        rest = rng.uniform(-scale, scale, c)
    else:
        rest = np.zeros(c)
    if "gap" in params and c > 1:
        rest = rest - rest.max()
        top = float(params["gap"])
        dom = int(params.get("dom", 0)) % c
        others = np.delete(np.arange(c), dom)
        rest[others] = np.minimum(rest[others], 0.0)
        rest[dom] = top
        ties = min(int(params.get("ties", 0)), c - 1)
        if ties:
            picks = rng.choice(others, size=ties, replace=False)
            rest[picks] = top
    x64 = np.clip(rest + float(params.get("offset", 0.0)), -f.max, f.max)
    if "mask" in params:
        n = min(int(params["mask_n"]), c)
        where = params.get("mask_where", "random")
        if where == "prefix":
            idx = np.arange(n)
        elif where == "suffix":
            idx = np.arange(c - n, c)
        elif where == "all_but_one":
            idx = np.delete(np.arange(c), int(np.argmax(x64)))
        else:
            idx = rng.choice(c, size=n, replace=False)
        x64[idx] = -np.inf if params["mask"] == "-inf" else -f.max
    if "special" in params:
        x64[int(params["special_pos"]) % c] = {"nan": np.nan, "+inf": np.inf,
                                                "-inf": -np.inf}[params["special"]]
    x = round_to(x64, dt).reshape(1, c)
    for index, bits in (params.get("edits") or {}).items():
        x.reshape(-1).view(_UINT[dt.itemsize])[int(index) % c] = int(bits)
    x.flags.writeable = False
    targets = labels = cotangent = None
    if op in (SPARSE_CE, DENSE_CE):
        t = _label_index(str(params.get("label", "random")), x[0].astype(np.float64), rng)
        if op == SPARSE_CE:
            targets = np.array([t], dtype=np.int64)
        else:
            lab = np.zeros(c)
            lab[t] = 1.0
            labels = round_to(lab, dt).reshape(1, c)
    kind = params.get("cot")
    if kind is not None:
        g = {"normal": lambda: rng.standard_normal(c), "ones": lambda: np.ones(c),
             "onehot": lambda: np.eye(1, c, int(rng.integers(0, c)))[0],
             "large": lambda: rng.standard_normal(c) * f.max ** 0.5,
             "tiny": lambda: rng.standard_normal(c) * f.min_normal * 4}[str(kind)]()
        cotangent = round_to(np.clip(g, -f.max, f.max), dt).reshape(1, c)
    return Row(x, targets, labels, cotangent)


# ------------------------------------------------------------------------------------ moves
def neighbour(params: Params, row: Row, rng: np.random.Generator, dtype: str, *,
              shrink: bool = False) -> tuple[Params, str]:
    """A local move from a kept candidate: one coordinate to a neighbouring float, the row a
    little longer or shorter, the gap nudged, the dominant element moved, or a fresh draw of
    the non-structural values; with ``shrink`` (a critical row, being minimised) mostly a
    shorter row with its positions kept where they fit. Returns the new parameters and the
    move's name."""
    p = dict(params)
    p["edits"] = dict(params.get("edits") or {})
    c = int(p["C"])
    dt = as_dtype(dtype)
    move = _choice(rng, ("ulp", "ulp", "ulp", "length", "gap", "dom", "reseed", "scale"))
    if shrink and c > 1 and rng.random() < 0.6:
        move = "shrink"
        cut = int(_choice(rng, (1, 1, 16, max(1, c // 8), max(1, c // 2))))
        new_c = max(1, c - cut)
        p["C"] = new_c
        for key in ("dom", "special_pos"):
            if key in p and int(p[key]) >= new_c:  # keep it last if it was beyond the cut
                p[key] = new_c - 1
        if "mask_n" in p:
            p["mask_n"] = max(1, min(int(p["mask_n"]), new_c - 1))
        p["edits"] = {k: v for k, v in p["edits"].items() if int(k) < new_c}
    elif move == "length":
        p["C"] = int(min(MAX_C, max(1, c + _choice(rng, (-1, 1, -8, 8, -16, 16)))))
        p["edits"] = {}
    elif move == "gap" and "gap" in p:
        p["gap"] = float(p["gap"]) * (1 + float(rng.normal(0, 0.02)))
    elif move == "dom" and "gap" in p:
        p["dom"] = _position(rng, c)
    elif move == "reseed":
        p["rng"] = int(rng.integers(0, 2**31))
        p["edits"] = {}
    elif move == "scale":
        p["scale"] = float(p.get("scale", 1.0)) * float(2.0 ** rng.normal(0, 1))
    else:  # one coordinate to a neighbouring float (1..4 ulps up or down)
        move = "ulp"
        flat = row.x.reshape(-1)
        finite = np.nonzero(np.isfinite(flat.astype(np.float64)))[0]
        if finite.size:
            top = np.argsort(-flat.astype(np.float64)[finite])[:4]
            i = int(finite[_choice(rng, top)] if rng.random() < 0.6 else _choice(rng, finite))
            bits = int(flat[i:i + 1].view(_UINT[dt.itemsize])[0])
            step = int(_choice(rng, (-4, -2, -1, 1, 2, 4)))
            new = bits + step
            if 0 <= new < 2 ** (8 * dt.itemsize):
                value = np.array([new], dtype=_UINT[dt.itemsize]).view(dt)[0]
                if np.isfinite(float(value)):
                    p["edits"][str(i)] = new
    if not p["edits"]:
        p.pop("edits")
    return p, move


def exhaustive(index: int, dtype: str) -> Params:
    """The ``index``-th two-class row of the 16-bit scan: ``[0, v]`` for every bit pattern v."""
    return {"C": 2, "rng": 0, "base": "const", "scale": 0.0, "offset": 0.0,
            "edits": {"1": int(index)}, "scan": "two_class_bits"}
