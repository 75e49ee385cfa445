#!/usr/bin/env bash
# Container entry point: `IMAGE CONFIG [overrides] [--resume] ...` runs
#   torchrun --nproc_per_node=$NPROC_PER_NODE $TORCHRUN_ARGS tools/train.py CONFIG ...
# `IMAGE tools/X.py ...` runs another tool under torchrun; any other command (bash, python, pytest) runs as is.
# NPROC_PER_NODE defaults to the number of visible GPUs (1 without GPUs). TORCHRUN_ARGS adds launcher flags,
# e.g. multi-node: TORCHRUN_ARGS="--nnodes=2 --node_rank=0 --rdzv_backend=c10d --rdzv_endpoint=host0:29500".
set -euo pipefail
cd "${SEG_UDA_HOME:-/opt/seg_uda}"

if [[ $# -eq 0 || "$1" == "--help" || "$1" == "-h" ]]; then
    exec python tools/train.py --help
fi

case "$1" in
    *.py) script="$1"; shift ;;
    *.yaml|*.yml) script="tools/train.py" ;;
    *) exec "$@" ;;  # e.g. bash, python, pytest
esac

nproc="${NPROC_PER_NODE:-}"
if [[ -z "$nproc" ]]; then
    nproc="$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')"
fi

launcher=(torchrun --nproc_per_node="$nproc")
if [[ -z "${TORCHRUN_ARGS:-}" ]]; then
    launcher+=(--standalone)  # single node: rendezvous on a free local port
else
    read -r -a extra <<< "$TORCHRUN_ARGS"
    launcher+=("${extra[@]}")
fi
exec "${launcher[@]}" "$script" "$@"
