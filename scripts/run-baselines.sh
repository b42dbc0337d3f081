#!/usr/bin/env bash
# Reproduce the leaderboard's baselines: the paper's four models under the `quick`
# protocol on tsb-synthetic 1.0.0, seeds 0-2, then submit them through `thyroid-bench submit`.
#   bash scripts/run-baselines.sh            # about 1-2 hours on 2 CPU cores
# Run folders go to runs/baselines/; an existing complete run is not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
TB=${TB:-.venv/bin/thyroid-bench}
MODELS=${MODELS:-"densenet169 resnet50 inception_v3 inception_resnet_v2"}
SEEDS=${SEEDS:-"0 1 2"}
$TB prepare
for seed in $SEEDS; do
  for model in $MODELS; do
    out=runs/baselines/$model-quick-seed$seed
    if [ -f "$out/entry.json" ]; then echo "done already: $out"; continue; fi
    rm -rf "$out"
    $TB run --model "$model" --protocol quick --seed "$seed" --out "$out" --quiet
  done
done
if [ "${SUBMIT:-1}" = 1 ]; then
  $TB submit runs/baselines/*-quick-seed*
fi
