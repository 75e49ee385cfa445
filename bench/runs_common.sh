# The preamble the bench/*_runs.sh scripts share (sourced, not run): repository root, Python, seeds, one thread per
# run as the tables were made, SynthCity generated if absent, and the runs folder $OUT (each script's default).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
SEEDS=${SEEDS:-"0 1 2"}
export OMP_NUM_THREADS=1
[ -f data/synthcity/synthcity_meta.json ] || $PY tools/generate_synthcity.py --out data/synthcity
mkdir -p "$OUT"
