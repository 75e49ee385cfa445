#!/usr/bin/env bash
# Paired A/B of the allocator setting (seg_uda/runtime/allocator.py) on the ResNet-101 AdvEnt step, 2 threads:
# alternating processes with glibc's defaults (SEG_UDA_MALLOC=default) and with the setting; the shipped default
# three pairs, ADVENT's reference loop two. Prints one line per process: setting, pair, then the benchmark's row.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
ARGS=(configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml model.encoder_weights=null --source-size 640 360
      --target-size 512 256 --no-flops --warmup 1 --out "")
for variant_iters in "config 5 3" "reference 3 2"; do
  read -r variant iters pairs <<< "$variant_iters"
  for i in $(seq 1 "$pairs"); do
    for setting in default tuned; do
      SEG_UDA_MALLOC=$([ "$setting" = default ] && echo default || echo on) \
        "$PY" tools/benchmark.py train "${ARGS[@]}" --iters "$iters" --variants "$variant" 2>&1 \
        | grep -E "^$variant " | sed "s/^/$setting $i /"
    done
  done
done
