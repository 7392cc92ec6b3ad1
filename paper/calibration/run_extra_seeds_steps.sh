#!/bin/sh
# After run_extra_seeds.sh: steps-mode seeds 3-4 where the seed spread exceeded the gap.
cd "$(dirname "$0")/../.."
while kill -0 13852 2>/dev/null; do sleep 10; done
OMP_NUM_THREADS=1 nice -n 10 .venv/bin/tradeoff sweep run paper/specs/calibrated-steps-seeds34.toml \
  --out paper/runs/calibrated-steps-seeds34 --workers 1 --no-progress --json > paper/runs/calibrated-steps-seeds34.log 2>&1
