#!/bin/bash
# Collect the amp study (config/amp.yaml, issue 19) into docs/results/amp. From the root:
#   snakemake --cores 2 --configfile config/laptop.yaml config/amp.yaml --directory studies/amp
#   docs/results/amp/collect.sh studies/amp
# The committed cells ran with the code of commit f9f694e (config/amp.yaml added to a
# snapshot of it) on an Intel Xeon with AVX-512 BF16 and AMX, 2 cores, 2026-12-02.
set -euo pipefail
study=${1:-studies/amp}
out=docs/results/amp
cp "$study/results/summary.csv" "$out/summary.csv"
for method in nre nre_amp bnre bnre_amp; do
  cp "$study/models/slcp/$method/4096.history.csv" "$out/history_$method.csv"
done
python "$out/table.py" "$out" > "$out/tables.md"
