#!/bin/bash
# Collect the ablation's finished cells into docs/results/ablation: tables, figures and
# training histories. Run from the repository root after (or while) the study runs:
#   docs/results/ablation/collect.sh studies/ablation
# The study's cells replace the committed ones of the same (task, method, budget), the
# others are kept (merge.py), so the 2^10 pass and the 2^13 pass (config/ablation_8192.yaml,
# its own directory) add up to one set of tables and figures.
# The exact posteriors of the three tasks (results/{task}/exact/all/, rule evaluate_exact)
# are collected with the cells when present; cells evaluated before the calibration
# diagnostics existed have no calibration.csv, and their figures are then not drawn.
set -euo pipefail
study=${1:-studies/ablation}
out=docs/results/ablation
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python docs/results/ablation/merge.py "$study" "$out" summary:metrics coverage:coverage
python -m bnre figures --summary "$out/summary.csv" --coverage "$out/coverage.csv" --outdir "$out" --formats png
mkdir -p "$out/histories"
for history in "$study"/models/*/*/*.history.csv; do
  budget=$(basename "$history" .history.csv)
  method=$(basename "$(dirname "$history")")
  task=$(basename "$(dirname "$(dirname "$history")")")
  cp "$history" "$out/histories/${task}_${method}_${budget}.csv"
done
python -m bnre training-figures --outdir "$out" "$out"/histories/*.csv --formats png
python docs/results/ablation/table.py "$out/summary.csv" > "$out/tables.md"
python docs/results/ablation/recipes.py "$out/summary.csv" "$out"
