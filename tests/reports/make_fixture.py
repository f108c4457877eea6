"""Record the small run that the report tests render: ``python -m tests.reports.make_fixture``.

What it holds (tests/reports/data/run/, committed; see tests/reports/data/README.md):

* **real** accuracy and stability records: ``softmax-bench run`` of a small suite (SUITE below)
  in float32 and float16 for a dozen NumPy and SciPy implementations, fused and composed
  cross-entropy included, on the machine that ran this script;
* **real** failure records: the plugins of tests/reports/fixture_plugins.py (HTML and script in a
  description, a name and an error message; a crash; a hang, recorded as a timeout; a wrong
  shape; a malformed registration) and PyTorch made unavailable by a stand-in ``torch`` package
  that fails to import;
* **synthetic** timing records (``case_family = "throughput"``), each marked ``"synthetic":
  true``: the timing runner did not exist when the fixture was made, so they follow its record
  schema with made-up, deterministic numbers.

Re-recording changes the real records (times, machine); update the gold files afterwards with
``SOFTMAX_BENCH_UPDATE_GOLD=1 pytest tests/reports``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "data" / "run"
SUITE_FILE = HERE / "data" / "report-fixture.toml"

SUITE = """name = "report-fixture"
description = "a few ordinary and adversarial families, small shapes (report tests)"

[[cases]]
family = "smoke_small"

[[cases]]
family = "random_normal"
params = { sigma = [1.0, 30.0], C = [64], rows = 2, anchor = false }

[[cases]]
family = "large_offset"
params = { c = ["0.9max"], C = [2] }

[[cases]]
family = "dominant_logit"
params = { gap = ["g_1"], C = [2] }

[[cases]]
family = "nan_in_row"
params = { mix = 1 }

[[cases]]
family = "all_neg_inf"
params = { C = [2] }

[[cases]]
family = "pos_inf"
params = { C = [2] }

[[cases]]
family = "labels_out_of_range"
params = { tf = true, label = [] }
"""

IMPLS = (
    "numpy.softmax_naive", "numpy.softmax_shifted", "scipy.special.softmax",
    "numpy.log_softmax_naive", "numpy.log_softmax_shifted", "scipy.special.log_softmax",
    "numpy.logsumexp_naive", "scipy.special.logsumexp",
    "numpy.cross_entropy_fused", "numpy.cross_entropy_composed",
    "numpy.cross_entropy_fused(probs)", "numpy.cross_entropy_composed(probs)",
    "hostile.*", "torch.nn.functional.softmax", "torch.nn.functional.cross_entropy",
)

ENTRY_POINTS = """[softmax_bench.plugins]
hostile = fixture_plugins:plugins
malformed = fixture_plugins:malformed
"""

# Synthetic timing: (implementation, op, modelled GB/s at float32, first-call seconds).
TIMED = (
    ("numpy.softmax_naive", "softmax", 3.1, 0.002),
    ("numpy.softmax_shifted", "softmax", 2.2, 0.002),
    ("scipy.special.softmax", "softmax", 2.6, 0.004),
    ("numpy.log_softmax_shifted", "log_softmax", 2.4, 0.002),
    ("scipy.special.log_softmax", "log_softmax", 2.0, 0.004),
    ("numpy.cross_entropy_fused", "sparse_softmax_cross_entropy", 2.9, 0.002),
    ("numpy.cross_entropy_composed", "sparse_softmax_cross_entropy", 1.7, 0.002),
    ("numpy.cross_entropy_fused(probs)", "softmax_cross_entropy", 2.3, 0.002),
    ("numpy.cross_entropy_composed(probs)", "softmax_cross_entropy", 1.5, 0.002),
)
SHAPES = ((256, 1000), (64, 32000), (16, 128256))
COPY_GBPS = {"float32": 9.5, "float16": 8.7}
ITEMSIZE = {"float32": 4, "float16": 2}


def _site(root: Path) -> Path:
    """A site directory with the fixture plugins and a ``torch`` that fails to import."""
    site = root / "site"
    dist = site / "report_fixture_plugins-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: report-fixture-plugins\n"
                                   "Version: 0.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    shutil.copy(HERE / "fixture_plugins.py", site / "fixture_plugins.py")
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text(
        'raise ImportError("libtorch_cpu.so: cannot open shared object file '
        '(stand-in for a broken install, report fixture)")\n')
    return site


def _timing_record(impl: str, op: str, gbps32: float, first: float, dtype: str,
                   shape: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
    n, c = shape
    item = ITEMSIZE[dtype]
    # read the logits and write the output (per-row losses write n values, read n labels)
    per_row = op.endswith("cross_entropy")
    moved = n * c * item + (n * (item + 8) if per_row else n * c * item)
    if op == "softmax_cross_entropy":
        moved += n * c * item  # dense labels
    # small rows pay a fixed per-call cost; float16 runs at ~60% of float32's rate in numpy
    gbps_model = gbps32 * (0.6 if dtype == "float16" else 1.0) * (1 - 0.4 * 1000 / (c + 1000))
    median = moved / (gbps_model * 1e9)
    samples = sorted(float(median * rng.lognormal(0.0, 0.03)) for _ in range(7))
    med = statistics.median(samples)
    q = statistics.quantiles(samples, n=4)
    gbps = moved / med / 1e9
    return {
        "implementation": impl, "framework": impl.split(".")[0], "op": op, "pass": "forward",
        "device": "cpu", "dtype": dtype, "case": f"throughput[shape={n}x{c}]",
        "case_family": "throughput", "case_status": None, "shape": [n, c], "status": "ok",
        "message": "", "verdict": None,
        "median_s": med, "iqr_s": q[2] - q[0], "min_s": samples[0],
        "mean_s": statistics.fmean(samples), "stddev_s": statistics.stdev(samples),
        "rounds": len(samples), "iterations": 1, "samples_s": samples, "bytes_moved": moved,
        "gbps": gbps, "copy_gbps": COPY_GBPS[dtype], "roofline_fraction": gbps / COPY_GBPS[dtype],
        "peak_bytes": 3 * n * c * item, "peak_bytes_method": "tracemalloc",
        "first_call_s": first, "threads": 2, "timer": "time.perf_counter", "wall_s": med * 9,
        "synthetic": True,
    }


def synthetic_timing() -> list[dict[str, Any]]:
    rng = np.random.default_rng(20261127)
    records = []
    for impl, op, gbps32, first in TIMED:
        for dtype in ("float32", "float16"):
            for shape in SHAPES:
                records.append(_timing_record(impl, op, gbps32, first, dtype, shape, rng))
                records.append({**records[-1], "pass": "backward", "status": "unsupported",
                                "message": "no autodiff: forward only",
                                "verdict": "unsupported", "wall_s": None,
                                **{k: None for k in ("median_s", "iqr_s", "min_s", "mean_s",
                                                     "stddev_s", "rounds", "iterations",
                                                     "samples_s", "bytes_moved", "gbps",
                                                     "roofline_fraction", "peak_bytes",
                                                     "peak_bytes_method", "first_call_s",
                                                     "timer")}})
    return records


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="report-fixture-") as tmp:
        site = _site(Path(tmp))
        SUITE_FILE.write_text(SUITE)
        out = Path(tmp) / "run"
        env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
        # the suite is named relative to the repository root, as the reproduce commands expect
        suite = SUITE_FILE.relative_to(ROOT).as_posix()
        cmd = [sys.executable, "-m", "harness", "run", "--suite", suite, "--out", str(out),
               "--dtype", "float32", "--dtype", "float16", "--timeout", "2", "--no-report",
               "--quiet"]
        for pattern in IMPLS:
            cmd += ["--impl", pattern]
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        run = json.loads((out / "run.json").read_text())
        run["meta"]["fixture"] = ("report test fixture: real accuracy records; timing records "
                                  "are synthetic (marked \"synthetic\": true)")
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        (OUT / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
        lines = (out / "results.jsonl").read_text().splitlines()
        lines += [json.dumps(r, separators=(",", ":")) for r in synthetic_timing()]
        (OUT / "results.jsonl").write_text("\n".join(lines) + "\n")
    print(f"fixture written to {OUT} ({len(lines)} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
