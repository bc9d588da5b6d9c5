#!/bin/bash
# Collect the ablation's finished cells into docs/results/ablation: tables, figures and
# training histories. Run from the repository root after (or while) the study runs:
#   docs/results/ablation/collect.sh studies/ablation
set -euo pipefail
study=${1:-studies/ablation}
out=docs/results/ablation
python -m bnre aggregate --output "$out/summary.csv" "$study"/results/*/*/*/metrics.csv
python -m bnre aggregate --output "$out/coverage.csv" "$study"/results/*/*/*/coverage.csv
python -m bnre figures --summary "$out/summary.csv" --coverage "$out/coverage.csv" --outdir "$out" --formats png
python -m bnre training-figures --outdir "$out" --formats png "$study"/models/*/*/*.history.csv
mkdir -p "$out/histories"
for history in "$study"/models/*/*/*.history.csv; do
  budget=$(basename "$history" .history.csv)
  method=$(basename "$(dirname "$history")")
  task=$(basename "$(dirname "$(dirname "$history")")")
  cp "$history" "$out/histories/${task}_${method}_${budget}.csv"
done
python docs/results/ablation/table.py "$out/summary.csv" > "$out/tables.md"
