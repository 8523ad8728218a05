#!/usr/bin/env bash
# One GPU call: the environment, flash-attn 4 from carried wheels, the conformance suite compiled (no
# interpreter), then the benchmarks at the issue sizes with the in-run peak calibration. A GPU run is the
# suite: everything goes through pytest and into one stored run under $OUT/store.
#   bash scripts/gpu_session.sh [conformance|bench|all]      (on the device machine, from the repo root)
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TOKENSPEC_PROFILE="${TOKENSPEC_PROFILE:-quick}"
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT/store"
what="${1:-all}"

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw,pstate --format=csv
    python3 -c "import torch, triton, sys; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda); print('triton', triton.__version__); print(torch.cuda.get_device_name(), torch.cuda.get_device_capability())"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# flash-attn 4 travels as wheels; the 92 MB CUDA library wheel comes in two parts (.whl and .whl2).
if [[ -f .whl/cu13.part-aa && -f .whl2/cu13.part-ab && ! -d /tmp/site/flash_attn ]]; then
    cat .whl/cu13.part-aa .whl2/cu13.part-ab > /tmp/nvidia_cutlass_dsl_libs_cu13-4.8.1-cp312-cp312-manylinux_2_28_x86_64.whl
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/*.whl /tmp/nvidia_cutlass_dsl_libs_cu13-4.8.1-cp312-cp312-manylinux_2_28_x86_64.whl \
        > "$OUT/fa4_install.log" 2>&1 || echo "flash-attn 4 install failed (see fa4_install.log)"
fi
[[ -d /tmp/site ]] && export PYTHONPATH=/tmp/site
python3 -c "import flash_attn.cute as f; print('flash_attn.cute', getattr(f, '__version__', '?'))" 2>&1 | tail -1

if [[ $what == conformance || $what == all ]]; then
    timeout "${CONFORMANCE_S:-300}" python3 -m pytest suite -q -p no:cacheprovider --maxfail=50 --benchmark-skip \
        --store "$OUT/store" --junitxml="$OUT/conformance.xml" 2>&1 | tail -80 > "$OUT/conformance_tail.log"
    cat "$OUT/conformance_tail.log"
fi
if [[ $what == bench || $what == all ]]; then
    timeout "${BENCH_S:-200}" python3 -m pytest suite/test_benchmarks.py -q -p no:cacheprovider --benchmark-only \
        --store "$OUT/store" --benchmark-json="$OUT/benchmarks.json" 2>&1 | tail -80 > "$OUT/bench_tail.log"
    cat "$OUT/bench_tail.log"
fi
