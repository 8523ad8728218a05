#!/usr/bin/env bash
# The tolerance rule's false-alarm check: N randomized runs (fresh seeds every run) of the property tests of every
# correct in-repo attention and paged implementation. Eager and the paged implementations run the dev profile
# (30 examples a property); triton-flash, whose calls run in Triton's interpreter on a CPU, 12 examples a property.
# Usage: scripts/false_alarm_runs.sh [N=20] [LOG_DIR=/tmp/tokenspec-alarm]; a summary line per run in LOG_DIR/summary.log.
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
logs=${2:-/tmp/tokenspec-alarm}
py="${TOKENSPEC_VENV:-.venv}/bin/python"
mkdir -p "$logs"
run() { TOKENSPEC_PROFILE=dev "$py" -m pytest -q -n 2 -p no:cacheprovider --benchmark-disable \
          suite/test_conformance.py -k test_property "$@"; }
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  run --impl eager --impl paged-triton --impl paged-gather-sdpa --impl paged-flex > "$logs/run_${i}_a.log" 2>&1
  TOKENSPEC_EXAMPLES=12 run --impl triton-flash > "$logs/run_${i}_b.log" 2>&1
  echo "run $i: $(tail -1 "$logs/run_${i}_a.log") | $(tail -1 "$logs/run_${i}_b.log") ($(( $(date +%s) - start )) s)" \
    >> "$logs/summary.log"
done
