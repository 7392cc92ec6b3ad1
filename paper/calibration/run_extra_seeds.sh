#!/bin/sh
# After run_calibrated.sh: seeds 3-4 where the seed spread exceeded the gap (see the spec).
cd "$(dirname "$0")/../.."
while kill -0 8383 2>/dev/null; do sleep 10; done
OMP_NUM_THREADS=1 nice -n 10 .venv/bin/tradeoff sweep run paper/specs/calibrated-epochs-seeds34.toml \
  --out paper/runs/calibrated-epochs-seeds34 --workers 1 --no-progress --json > paper/runs/calibrated-epochs-seeds34.log 2>&1
