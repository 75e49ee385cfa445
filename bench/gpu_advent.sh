#!/usr/bin/env bash
# Paper-size AdvEnt iteration on one CUDA GPU: DeepLab-v2 ResNet-101 (random init, no weights to download),
# GTA5 1280x720 source / Cityscapes 1024x512 target, batch 1, multi-level AdvEnt.
# Variants: ADVENT's FP32 loop (reference), our loop in FP32, bf16 and fp16 autocast with channels_last, and fp16
# + channels_last with the classifiers as one GEMM (the CPU default's aspp_impl).
# Prints the same table as the CPU benchmark (s/iter, speed-up, CUDA and RSS peaks, FLOP/s vs GEMM peak,
# loss agreement). About 3 minutes of GPU time (5 variants x (3 warm-up + 10 timed + 1 counted) iterations).
#   bash bench/gpu_advent.sh [extra tools/benchmark.py train options]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench/gpu_advent.sh needs a CUDA GPU')"
exec timeout 290 $PY tools/benchmark.py train configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml \
  model.encoder_weights=null --device cuda --variants reference fp32 bf16_cl fp16_cl fp16_cl_gemm \
  --source-size 1280 720 --target-size 1024 512 --warmup 3 --iters 10 --out runs/bench_gpu "$@"
