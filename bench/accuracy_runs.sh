#!/usr/bin/env bash
# The SynthCity accuracy table (README, results/synthcity.json) on protocol v2 (docs/synthcity_protocol.md): every row
# x seeds 0, 1, 2 (final weights), one thread per run and two runs at a time on the 2 cores, as the table was made;
# then AdvEnt+MinEnt as the paper's 0.5/0.5 ensemble of the MinEnt and AdvEnt runs of each seed (with and
# without the class-ratio prior); then the results
# file and the table. Finished runs (final_metrics.json present) are skipped and interrupted ones resume from their
# last checkpoint (logs appended), so the script resumes.
#   bash bench/accuracy_runs.sh                                   # everything (about 4 hours on 2 cores)
#   ROWS="source_only oracle" SEEDS="0 1 2" bash bench/accuracy_runs.sh   # some rows only
#   ROWS="source_only self_training self_training_rcs" SEEDS="3 4 5" bash bench/accuracy_runs.sh   # the replication
OUT=${OUT:-runs/v2}
# shellcheck source=bench/runs_common.sh
source "$(dirname "$0")/runs_common.sh"
# shellcheck disable=SC2086
$PY bench/synthcity_results.py commands --out "$OUT" --seeds $SEEDS ${ROWS:+--rows $ROWS} \
  | run_parallel
# AdvEnt+MinEnt rows: ADVENT's evaluation averages the MinEnt and AdvEnt models' logits 0.5 / 0.5, per seed
# shellcheck disable=SC2086
$PY bench/synthcity_results.py ensembles --out "$OUT" --seeds $SEEDS | sed "s|^|$PY |" | sh -e
# the BatchNorm experiment's runs scored again after AdaBN (500 unlabelled target images; reads no target label)
# shellcheck disable=SC2086
$PY bench/synthcity_results.py adabn --out "$OUT" --seeds $SEEDS | sed "s|^|$PY |" | sh -e
$PY bench/synthcity_results.py collect --runs "$OUT" --out results/synthcity.json --merge
# ADVENT's own BatchNorm policy with its statistics-only control (session 15): its own results file and table
# (with the AdaBN re-scorings, and the confirmation seeds 3-5 in their own table)
$PY bench/synthcity_results.py collect --runs "$OUT" --out results/synthcity_bn.json --merge --rows bn
if [ -f results/synthcity_bn.json ]; then
  $PY bench/synthcity_results.py table results/synthcity_bn.json --markdown results/synthcity_bn.md
  # the confirmation seeds, once any has run
  $PY bench/synthcity_results.py table results/synthcity_bn.json --seeds 3 4 5 --if-any \
    --markdown results/synthcity_bn_seeds345.md
fi
$PY bench/synthcity_results.py table results/synthcity.json --markdown results/synthcity.md
$PY bench/synthcity_results.py table results/synthcity.json --seeds 3 4 5 --markdown results/synthcity_seeds345.md
$PY bench/synthcity_results.py curve results/synthcity.json --markdown results/synthcity_curve.md
