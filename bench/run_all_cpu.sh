#!/usr/bin/env bash
# Every CPU benchmark table of the README, in one run (about 13 minutes on 2 cores; needs data/synthcity for
# the data-pipeline table). Tables are printed and saved as JSON + Markdown under runs/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
$PY tools/benchmark.py gemm
$PY tools/benchmark.py aspp   # the classifier alone: dilated convolutions vs one GEMM
# the paper-size AdvEnt iteration: ADVENT's FP32 loop vs ours (DeepLab-v2 ResNet-101, 640x360 / 512x256, batch 1)
$PY tools/benchmark.py train configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml model.encoder_weights=null \
    --source-size 640 360 --target-size 512 256 --iters 5
# the CPU default (EfficientNet-Lite0 DeepLab-v2, AdvEnt+MinEnt on SynthCity sizes)
$PY tools/benchmark.py train configs/synthcity/advent_minent_lite0.yaml --iters 5 \
    --variants reference fp32 fp32_cl fp32_dwflip bf16 config
# its depthwise convolutions, layer by layer: oneDNN's backward and depthwise_impl=flipped's (1 thread, as the runs)
$PY tools/benchmark.py depthwise configs/synthcity/minent_lite0.yaml --threads 1
# training speed per method: the SynthCity configs as shipped, and the ResNet-101 paper configs at 640x360 / 512x256
$PY tools/benchmark.py methods configs/synthcity/{source_only,minent,advent,advent_minent,dann,oracle,self_training}_lite0.yaml --iters 5
$PY tools/benchmark.py methods configs/gta5_to_cityscapes/{source_only,minent,advent,dann}_deeplabv2_r101.yaml \
    model.encoder_weights=null --source-size 640 360 --target-size 512 256 --iters 3 --out runs/bench/r101
$PY tools/benchmark.py infer configs/synthcity/advent_minent_lite0.yaml --iters 10
$PY tools/benchmark.py infer configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml model.encoder_weights=null --size 1024 512 --iters 2 --warmup 1 \
    --aspp-impl conv gemm
if [ -d data/synthcity ]; then
  $PY tools/benchmark.py data configs/synthcity/advent_minent_lite0.yaml --workers 0 1 2
else
  echo "skipping the data-pipeline table: generate SynthCity first (python tools/generate_synthcity.py --out data/synthcity)"
fi
$PY tools/benchmark.py eval --num-images 100
