#!/usr/bin/env bash
# The SynthCity accuracy table of the README: every row x seeds 0, 1, 2 at the CPU budget (600 iterations, final
# checkpoint), one thread per run, then AdvEnt+MinEnt as the paper's 0.5/0.5 ensemble of the MinEnt and AdvEnt
# runs of each seed, then the table. Each run takes 5-32 minutes on one core; run two of these scripts'
# lines at a time on 2 cores (the README's numbers were made that way). Work dirs: runs/b600/<row>[_sN]
# (seed 0 has no suffix).
#   bash bench/accuracy_runs.sh            # everything, one run after the other
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1
[ -d data/synthcity ] || $PY tools/generate_synthcity.py --out data/synthcity
# row name -> config (configs/synthcity/<config>_lite0.yaml)
ROWS="source_only:source_only oracle:oracle minent:minent advent:advent dann:dann frozen_backbone:source_only_frozen_backbone
      source_only_scratch:source_only_scratch advent_minent_single:advent_minent"
suffix() { [ "$1" = 0 ] && echo "" || echo "_s$1"; }
for seed in 0 1 2; do
  for row in $ROWS; do
    dir=runs/b600/${row%%:*}$(suffix $seed)
    [ -f "$dir/final_metrics.json" ] && continue
    $PY tools/train.py configs/synthcity/${row#*:}_lite0.yaml seed=$seed --work-dir "$dir" --no-progress
  done
  # AdvEnt+MinEnt: ADVENT's evaluation averages the two models' logits with weights 0.5 / 0.5
  ens=runs/b600/ensemble$(suffix $seed)
  mkdir -p "$ens"
  $PY tools/evaluate.py configs/synthcity/minent_lite0.yaml runs/b600/minent$(suffix $seed)/checkpoints/last.pth \
    runs/b600/advent$(suffix $seed)/checkpoints/last.pth --weights 0.5 0.5 --fuse logit --amp bf16 --threads 1 \
    --out-json "$ens/final_metrics.json"
done
runs() { echo "runs/b600/$1,runs/b600/$1_s1,runs/b600/$1_s2"; }
$PY bench/accuracy_table.py --run source-only=$(runs source_only) --run MinEnt=$(runs minent) \
  --run AdvEnt=$(runs advent) --run "AdvEnt+MinEnt (0.5/0.5 ensemble)=$(runs ensemble)" \
  --run "AdvEnt+MinEnt (one model, both losses)=$(runs advent_minent_single)" --run DANN=$(runs dann) \
  --run oracle=$(runs oracle) --run "source-only, frozen backbone=$(runs frozen_backbone)" \
  --run "source-only, from scratch=$(runs source_only_scratch)" --markdown runs/b600/accuracy_table.md
