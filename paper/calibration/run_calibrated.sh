#!/bin/sh
# The calibrated sweeps, fixed epochs then fixed steps, one run at a time, 1 thread, niced.
set -e
cd "$(dirname "$0")/../.."
for mode in epochs steps; do
  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/tradeoff sweep run paper/specs/calibrated-$mode.toml \
    --out paper/runs/calibrated-$mode --workers 1 --no-progress --json > paper/runs/calibrated-$mode.log 2>&1
done
