#!/usr/bin/env bash
# Reproduce the leaderboard's baselines: the paper's four models under a protocol on a
# dataset (default tsb-synthetic 1.0.0), seeds 0-2, then submit them through `thyroid-bench submit`.
#   bash scripts/run-baselines.sh                          # quick@2 on the CPU: 1-2 hours on 2 cores
#   PROTOCOL=quick@1 bash scripts/run-baselines.sh         # the committed quick@1 baselines
#   TASK=residual-tissue DATASET=tsb-residual MODELS="densenet169 resnet50 inception_v3 inception_resnet_v2 timm:resnet18" \
#     bash scripts/run-baselines.sh                        # the residual-tissue task's baselines
#   PROTOCOL=paper SEEDS=0 bash scripts/run-baselines.sh   # the paper's protocol on a GPU
#   PROTOCOL=paper RUN_ARGS=--compile bash scripts/run-baselines.sh
# Run folders go to runs/baselines/<dataset>/<model>-<protocol without @>-seed<N>/ (quick2, quick1;
# the committed quick@1 runs were made as <model>-quick-seed<N>); an existing complete run is
# not redone. With nvidia-smi present, GPU utilisation and memory are sampled every second
# into runs/baselines/<dataset>/<model>-<protocol>-seed<N>.gpu.csv and summarised at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
TB=${TB:-.venv/bin/thyroid-bench}
MODELS=${MODELS:-"densenet169 resnet50 inception_v3 inception_resnet_v2"}
SEEDS=${SEEDS:-"0 1 2"}
PROTOCOL=${PROTOCOL:-quick@2}
TAG=${PROTOCOL//@/}
RUN_ARGS=${RUN_ARGS:-}
TASK=${TASK:-four-pattern}
DATASET=${DATASET:-tsb-synthetic}
$TB prepare --task "$TASK"
base=runs/baselines/$DATASET
mkdir -p "$base"
for seed in $SEEDS; do
  for model in $MODELS; do
    out=$base/${model//:/-}-$TAG-seed$seed
    if [ -f "$out/entry.json" ]; then echo "done already: $out"; continue; fi
    rm -rf "$out"
    sampler=
    if command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 \
        > "$out.gpu.csv" &
      sampler=$!
    fi
    # shellcheck disable=SC2086  # RUN_ARGS is a list of options
    $TB run --dataset "$DATASET" --model "$model" --protocol "$PROTOCOL" --seed "$seed" --out "$out" --quiet $RUN_ARGS
    if [ -n "$sampler" ]; then kill "$sampler"; fi
  done
done
for f in "$base"/*-"$TAG"-seed*.gpu.csv; do
  [ -f "$f" ] || continue
  awk -F', ' -v f="$f" '{u+=$1; if ($2>m) m=$2; n++} END {if (n) printf "%s: GPU utilisation mean %.0f%% over %d s, peak memory %d MiB\n", f, u/n, n, m}' "$f"
done
python3 - "$TAG" "$base" <<'PY'
import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[2]).glob(f"*-{sys.argv[1]}-seed*/config.json")):
    c = json.loads(p.read_text())
    train = c["selection"].get("train_s") or 0
    print(f"{p.parent.name}: wall {c['wall_time_s']} s, training {train} s, "
          f"device {c['environment']['device_name']}")
PY
if [ "${SUBMIT:-1}" = 1 ]; then
  $TB submit "$base"/*-"$TAG"-seed*/
fi
