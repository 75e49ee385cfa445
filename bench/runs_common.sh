# The preamble the bench/*_runs.sh scripts share (sourced, not run): repository root, Python (.venv's unless PYTHON
# is set), seeds, one thread per run as the tables were made, SynthCity generated if absent, the runs folder $OUT
# (each script's default), and run_parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY="$PWD/.venv/bin/python"   # make install's environment
$PY -c "import seg_uda" 2>/dev/null \
  || { echo "bench: '$PY' cannot import seg_uda; run 'make install' or set PYTHON=/path/to/python" >&2; exit 1; }
SEEDS=${SEEDS:-"0 1 2"}
export OMP_NUM_THREADS=1
[ -f data/synthcity/synthcity_meta.json ] || $PY tools/generate_synthcity.py --out data/synthcity
mkdir -p "$OUT"

# Runs the lines on stdin (each the arguments after python, with its own log redirection) JOBS at a time; a failed
# one stops the script with a message instead of a silent exit status.
run_parallel() {
  sed "s|^|$PY |" | xargs -P "${JOBS:-2}" -I{} sh -c '{}' \
    || { echo "bench: a command failed; its log is the .log file beside its run folder under $OUT" >&2; exit 1; }
}
