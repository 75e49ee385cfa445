#!/usr/bin/env bash
# Paper-size AdvEnt iteration on CUDA GPUs, unattended, under 5 minutes: DeepLab-v2 ResNet-101 (random init, no
# weights to download), GTA5 1280x720 source / Cityscapes 1024x512 target, batch 1, multi-level AdvEnt.
#   1. eager:    ADVENT's FP32 loop (reference), our loop in FP32, bf16 and fp16 autocast + channels_last, and fp16
#                with the classifiers as one GEMM                                       (timeout 100 s)
#   2. compiled: FP32, bf16 and fp16 under torch.compile (schedule.compile; the first
#                iteration, which compiles, is timed separately)                         (timeout 150 s)
#   3. N processes: fp16 + channels_last under torchrun, one process per visible GPU (DDP, NCCL); skipped, and
#                said so, with one GPU                                                   (timeout 40 s)
# Writes one Markdown table, $OUT/gpu_advent.md (s/iter, speed-up over the reference, CUDA and RSS peaks, FLOP/s
# against the GEMM peak, loss agreement), and exits non-zero, naming the part, if any part failed or timed out
# (the table still holds what finished).
#   bash bench/gpu_advent.sh            # OUT=runs/bench_gpu by default
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-runs/bench_gpu}
CONFIG=configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml
SIZES=(--source-size 1280 720 --target-size 1024 512)
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench/gpu_advent.sh needs a CUDA GPU')" || exit 2
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
mkdir -p "$OUT"
: > "$OUT/status.txt"

part() {  # part NAME TIMEOUT command...: run, record "NAME ok|FAILED (...)" in status.txt
  local name=$1 limit=$2; shift 2
  echo "== $name (timeout ${limit}s): $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then echo "$name ok" >> "$OUT/status.txt"
  elif [ $rc -eq 124 ]; then echo "$name FAILED (timed out after ${limit}s; log $OUT/$name.log)" >> "$OUT/status.txt"
  else echo "$name FAILED (exit $rc; log $OUT/$name.log)" >> "$OUT/status.txt"; fi
  tail -n 3 "$OUT/$name.log"
}

part eager 100 $PY tools/benchmark.py train $CONFIG model.encoder_weights=null --device cuda "${SIZES[@]}" \
  --variants reference fp32 bf16_cl fp16_cl fp16_cl_gemm --warmup 3 --iters 10 --out "$OUT/eager"
part compiled 150 $PY tools/benchmark.py train $CONFIG model.encoder_weights=null --device cuda "${SIZES[@]}" \
  --variants fp32+compile bf16_cl+compile fp16_cl+compile --warmup 2 --iters 10 --no-flops --out "$OUT/compiled"
if [ "$NGPU" -gt 1 ]; then
  part "ddp_${NGPU}gpu" 40 $PY -m torch.distributed.run --standalone --nproc_per_node "$NGPU" -m seg_uda.benchmarks.cli \
    _train_worker $CONFIG model.encoder_weights=null --variant fp16_cl --device cuda "${SIZES[@]}" --warmup 3 --iters 10
else
  echo "ddp skipped: $NGPU GPU visible (the N-process row needs one process per GPU)" >> "$OUT/status.txt"
fi

$PY - "$OUT" "$NGPU" <<'EOF'
"""One Markdown table from the parts' JSON / RESULT lines; the status of every part below it."""
import json, sys
from pathlib import Path
out, ngpu = Path(sys.argv[1]), int(sys.argv[2])
rows = []
for part in ("eager", "compiled"):
    f = out / part / "train_advent_deeplabv2_r101.json"
    if f.is_file():
        rows += [dict(r, part=part) for r in json.loads(f.read_text())["rows"]]
for log in out.glob("ddp_*gpu.log"):
    rows += [dict(json.loads(ln[7:]), part=log.stem) for ln in log.read_text().splitlines() if ln.startswith("RESULT ")]
ref = next((r for r in rows if r["variant"] == "reference"), None)
lines = ["| part | variant | processes | s/iter | first iter s | speed-up | CUDA peak MiB | GFLOP/s | of peak "
         "| loss rel. diff |", "|" + "---|" * 10]
fmt = lambda v, f: "-" if v is None else f.format(v)
for r in rows:
    sp = ref["s_per_iter"] / r["s_per_iter"] if ref else None
    lines.append(f"| {r['part']} | {r['variant']} | {r.get('world_size', 1)} | {r['s_per_iter']:.3f} | "
                 f"{fmt(r.get('first_step_s'), '{:.1f}')} | {fmt(sp, '{:.2f}x')} | {fmt(r.get('cuda_peak_mib'), '{:.0f}')} | "
                 f"{fmt(r.get('gflops'), '{:.0f}')} | {fmt(r.get('peak_frac'), '{:.0%}')} | "
                 f"{fmt(r.get('max_loss_rel_diff'), '{:.1e}')} |")
status = (out / "status.txt").read_text().strip().splitlines()
md = "\n".join(["AdvEnt iteration, DeepLab-v2 ResNet-101, 1280x720 / 1024x512, batch 1 per process "
                f"({ngpu} GPU visible)", "", *lines, "", *[f"- {s}" for s in status]]) + "\n"
(out / "gpu_advent.md").write_text(md)
print(md)
sys.exit(1 if any("FAILED" in s for s in status) else 0)
EOF
