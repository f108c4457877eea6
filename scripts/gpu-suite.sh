#!/usr/bin/env bash
# The GPU run of softmax-bench, in one go: accuracy and stability, then throughput, on CUDA, for
# PyTorch eager, PyTorch @compile and JAX @jit, in float32, bfloat16 and float16.
#
#   scripts/gpu-suite.sh OUTDIR      -> OUTDIR/accuracy and OUTDIR/throughput (run directories)
#
# Meant for a machine that has only torch, jax, numpy, mpmath, pandas, pytest and
# pytest-benchmark and no network: softmax-bench runs from this checkout (PYTHONPATH), and the
# three wheels the reference engine needs beyond those (gmpy2, numpy-quaddtype, python-flint)
# are installed from ./.whl when they are missing (see docs/gpu.md for fetching them). DEVICE=cpu runs the same
# script on a CPU, as its test does; JOBS sets the accuracy run's parallel workers; STAGES
# (default "accuracy throughput") picks the runs.
set -euo pipefail

out=${1:?usage: scripts/gpu-suite.sh OUTDIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
jobs=${JOBS:-8}

if ! "$py" -c "import gmpy2, numpy_quaddtype, flint" 2>/dev/null; then
    if ! compgen -G ".whl/*.whl" >/dev/null; then
        echo "gpu-suite: gmpy2, numpy-quaddtype or python-flint is missing and there are no wheels in" \
             "$root/.whl (docs/gpu.md says how to fetch them)" >&2
        exit 2
    fi
    site=$(mktemp -d)
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# JOBS workers compile at once; inductor's own pool would start one process per core in each
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-2}

impls=(
    torch.nn.functional.softmax torch.nn.functional.softmax@compile
    torch.nn.functional.log_softmax torch.nn.functional.log_softmax@compile
    torch.nn.functional.cross_entropy torch.nn.functional.cross_entropy@compile
    torch.composed_softmax_log_pick torch.composed_softmax_log_pick@compile
    jax.nn.softmax@jit jax.nn.log_softmax@jit
    optax.softmax_cross_entropy_with_integer_labels@jit jax.composed_softmax_log_pick@jit
)
select=()
for impl in "${impls[@]}"; do select+=(--impl "$impl"); done

run() {  # run SUITE NAME EXTRA...: one run directory, timed
    local suite=$1 name=$2
    shift 2
    local start=$SECONDS
    "$py" -m harness run --suite "$suite" --device "$device" "${select[@]}" \
        --out "$out/$name" --no-report --quiet "$@"
    echo "gpu-suite: $name took $((SECONDS - start)) s"
}

"$py" -m harness list > "$out/implementations.txt" 2>&1 || true
command -v nvidia-smi >/dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
for stage in ${STAGES:-accuracy throughput}; do
    case $stage in
        accuracy) run scripts/gpu/accuracy.toml accuracy --jobs "$jobs" --timeout 180 ;;
        throughput) run scripts/gpu/throughput.toml throughput --timeout 300 ;;
        *) echo "gpu-suite: unknown stage $stage (accuracy, throughput)" >&2; exit 2 ;;
    esac
done
echo "gpu-suite: run directories in $out (accuracy, throughput)"
