#!/usr/bin/env bash
# Multi-node DDP training on SLURM: one torchrun agent per node, one process per GPU.
#   sbatch scripts/slurm_train.sh configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml [overrides...] [--resume]
# Adjust the #SBATCH lines (nodes, GPUs, partition, time) to your cluster, or override them on the
# sbatch command line (e.g. `sbatch --nodes=4 ...`). Effective batch = nodes x GPUs per node x data.batch_size
# per domain; the learning rate is NOT rescaled automatically (see docs/distributed.md).
#SBATCH --job-name=seg_uda
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --signal=TERM@120
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: sbatch $0 CONFIG [key.sub=value ...] [--resume [PATH]] [--work-dir DIR]" >&2
    exit 2
fi

cd "${SLURM_SUBMIT_DIR:-$(pwd)}"
GPUS_PER_NODE="${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}}"
GPUS_PER_NODE="${GPUS_PER_NODE:-1}"
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
MASTER_PORT="${MASTER_PORT:-29500}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( ${SLURM_CPUS_PER_TASK:-8} / (GPUS_PER_NODE > 0 ? GPUS_PER_NODE : 1) ))}"

echo "nodes=$SLURM_NNODES gpus/node=$GPUS_PER_NODE rendezvous=$MASTER_ADDR:$MASTER_PORT"
# `--signal=TERM@120` gives the job 2 minutes' warning; srun forwards SIGTERM to torchrun, which forwards it to
# the ranks: the trainer writes a checkpoint and exits, and `--resume` continues from it in the next job.
srun --kill-on-bad-exit=1 torchrun \
    --nnodes "$SLURM_NNODES" \
    --nproc_per_node "$GPUS_PER_NODE" \
    --rdzv_id "$SLURM_JOB_ID" \
    --rdzv_backend c10d \
    --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" \
    --max_restarts 0 \
    tools/train.py "$@"
