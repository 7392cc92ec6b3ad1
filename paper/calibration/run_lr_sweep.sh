#!/bin/sh
# The calibration lr sweep (paper/calibration/CRITERION.md): n = 256, fixed epochs, seed 0,
# one run at a time, 1 thread, niced (the machine is shared).
set -e
cd "$(dirname "$0")/../.."
for lr in 3e-4 1e-3 3e-3; do
  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/tradeoff sweep run paper/specs/calib-lr$lr.toml \
    --out paper/runs/calib-lr$lr --workers 1 --no-progress --json > paper/runs/calib-lr$lr.log 2>&1
done
