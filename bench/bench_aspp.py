"""ADVENT's summed-ASPP classifier alone: per-branch dilated convolutions vs one GEMM (forward + backward).

Prints ms per forward + backward (median of 5 after 1 warm-up) for the feature shapes of the README's AdvEnt
iteration (ResNet-101: 2048 / 1024 channels at 45x80 source and 32x64 target) and of Lite0 (320 channels),
in FP32 and bf16 autocast, channels_last, and the largest relative difference of output and input gradient.

    python bench/bench_aspp.py [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seg_uda.models import ASPPClassifier  # noqa: E402

SHAPES = [(2048, 45, 80), (1024, 45, 80), (2048, 32, 64), (320, 16, 32)]


def fwd_bwd_ms(clf: ASPPClassifier, x0: torch.Tensor, amp: bool, repeats: int = 6):
    times, last = [], None
    for _ in range(repeats):
        x = x0.clone().requires_grad_()
        clf.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            y = clf(x)
        y.float().backward(torch.full(y.shape, 0.01))
        times.append(time.perf_counter() - t0)
        last = (y.detach().float(), x.grad)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2], last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{'channels x H x W':<18} {'precision':<9} {'conv ms':>8} {'gemm ms':>8} {'speed-up':>8} {'max rel. diff':>13}")
    for c, h, w in SHAPES:
        torch.manual_seed(0)
        clf = ASPPClassifier(c, 19)
        x0 = torch.randn(1, c, h, w).contiguous(memory_format=torch.channels_last)
        for amp in (False, True):
            res = {}
            for impl in ("conv", "gemm"):
                clf.impl = impl
                res[impl] = fwd_bwd_ms(clf, x0, amp)
            diff = max(float((u - v).abs().max() / u.abs().max()) for u, v in zip(res["conv"][1], res["gemm"][1]))
            print(f"{c} x {h} x {w:<8} {'bf16' if amp else 'fp32':<9} {res['conv'][0]:8.1f} {res['gemm'][0]:8.1f} "
                  f"{res['conv'][0] / res['gemm'][0]:7.2f}x {diff:13.1e}")


if __name__ == "__main__":
    main()
