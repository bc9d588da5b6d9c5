#!/bin/bash
# Collect the six-method study (config/methods.yaml) into docs/results/methods: its tidy
# tables, its figures and the table of docs/results.md. Run from the repository root:
#   docs/results/methods/collect.sh studies/methods
# The study's cells replace the committed ones of the same (task, method, budget), the
# others are kept (docs/results/ablation/merge.py), so passes run in separate directories
# (the 2^10 and the 2^13 cells) add up.
set -euo pipefail
study=${1:-studies/methods}
out=docs/results/methods
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
[ -f "$out/calibration.csv.gz" ] && gunzip -f "$out/calibration.csv.gz"  # the committed one, merged below
python docs/results/ablation/merge.py "$study" "$out" summary:metrics coverage:coverage calibration:calibration
# NRE and BNRE at 2^13 are the laptop study's cells (same seeds, data and training), unless this study ran them
python docs/results/methods/adopt.py docs/results/laptop "$out" 8192 "$study" nre bnre exact
python -m bnre figures --summary "$out/summary.csv" --coverage "$out/coverage.csv" \
  --calibration "$out/calibration.csv" --outdir "$out" --formats png
gzip -nf "$out/calibration.csv"  # 1 row per pair and parameter: compressed in the repository
# the figures of single cells' trainings and posteriors, as the study drew them
for figure in posterior training penalty; do cp "$study"/figures/${figure}_*.png "$out"/ 2>/dev/null || true; done
python docs/results/methods/table.py "$out/summary.csv" > "$out/tables.md"
