#!/usr/bin/env bash
# The kernel examples on a CUDA GPU, through the public testing API: the Triton softmax of
# examples/kernels and a CuPy softmax (both take torch CUDA tensors, CuPy's through DLPack,
# returning a CuPy array), each verified
# over the quick suite in float32, float16 and bfloat16 (CuPy: float32, float16), with their run
# directories kept; then the examples' own pytest files. Like scripts/gpu-suite.sh it runs from
# the checkout on a machine without network (the reference's wheels from ./.whl when missing).
#
#   scripts/gpu-kernels.sh OUTDIR    -> OUTDIR/triton-softmax, OUTDIR/cupy-softmax (run dirs)
set -euo pipefail

out=${1:?usage: scripts/gpu-kernels.sh OUTDIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
py=${PYTHON:-python3}
if ! "$py" -c "import gmpy2, numpy_quaddtype, flint" 2>/dev/null; then
    site=$(mktemp -d)
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root:$root/examples/kernels${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

"$py" - "$out" <<'PY'
import sys
from softmax_bench.testing import verify
import triton_softmax, cupy_softmax

out = sys.argv[1]
for name, fn, framework, dtypes in (
        ("triton-softmax", triton_softmax.softmax, "torch", ("float32", "float16", "bfloat16")),
        ("cupy-softmax", cupy_softmax.softmax, "torch", ("float32", "float16"))):
    result = verify(fn, "softmax", dtypes=dtypes, framework=framework, device="cuda",
                    out=f"{out}/{name}")
    print(f"== {name}: passed={result.passed}, {len(result.records)} records")
    print(result)
PY
"$py" -m pytest -q -p no:cacheprovider examples/kernels/test_triton_softmax.py 2>&1 | tail -3
