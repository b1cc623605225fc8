#!/usr/bin/env bash
# Copy a finished run's user-facing results (grids, compare.md, report.md and their plots,
# the best genome) from RUN_DIR into samples/<name>/, beside the commands that made them.
#   experiments/publish_samples.sh runs/mnist samples/mnist
set -euo pipefail
run=$1 out=$2
mkdir -p "$out/report" "$out/samples"
cp "$run"/compare.md "$run"/compare.json "$run"/compare_*.png "$out"/
cp "$run"/report.md "$out"/
cp "$run"/report/*.png "$out"/report/
cp "$run"/samples/gen*.png "$out"/samples/
cp "$run"/best/genome.json "$out"/best_genome.json
cp "$run"/config.json "$out"/config.json
cp "$run"/best_grid.png "$out"/
