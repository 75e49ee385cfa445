#!/usr/bin/env bash
# The open-set SynthCity table (README "Open set", results/openset.json) on protocol v2: the open-set source-only
# model, OSBP with confidence pseudo-labels and its tau 0.968 variant (docs/openset.md's rule), seeds 0, 1, 2 (final
# weights), one thread per run and two runs at a time on the 2 cores; then the post-hoc scorings (MSP, normalized
# entropy on the source-only model; the thresholded p(unknown) of OSBP), every threshold fixed on held-out source
# pixels, and each training's label-free score (no target label: its target predictions' class histogram, unknown
# share and entropy); then the results file and the table.
# Finished runs and scorings are skipped and interrupted runs resume from their last checkpoint, so the script resumes.
#   bash bench/openset_runs.sh                 # everything (three trainings per seed, 15-52 min each on a slow CPU)
#   SEEDS="0" bash bench/openset_runs.sh       # one seed
OUT=${OUT:-runs/openset_v2}
# shellcheck source=bench/runs_common.sh
source "$(dirname "$0")/runs_common.sh"
# shellcheck disable=SC2086
$PY bench/openset_results.py commands --out "$OUT" --seeds $SEEDS | run_parallel
# shellcheck disable=SC2086
$PY bench/openset_results.py evaluations --out "$OUT" --seeds $SEEDS | run_parallel
# shellcheck disable=SC2086
$PY bench/openset_results.py collect --runs "$OUT" --seeds $SEEDS --out results/openset.json
$PY bench/openset_results.py table results/openset.json --markdown results/openset.md
