"""ADVENT's summed-ASPP classifier alone: per-branch dilated convolutions vs one GEMM (forward + backward), to
see where `model.aspp_impl=gemm` pays off; `seg-uda-benchmark aspp [--threads 2]`."""
from __future__ import annotations

import argparse
import time

import torch

from seg_uda.models import ASPPClassifier

from .common import environment, machine_line

#: (channels, H, W): ResNet-101's 2048 / 1024 channels at 45x80 source and 32x64 target, and Lite0's 320 channels
SHAPES = [(2048, 45, 80), (1024, 45, 80), (2048, 32, 64), (320, 16, 32)]


def fwd_bwd_ms(clf: ASPPClassifier, x0: torch.Tensor, amp: bool, repeats: int = 6):
    """Median ms of forward + backward after one warm-up, and the last (output, input gradient)."""
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


def cmd_aspp(a: argparse.Namespace) -> None:
    """`aspp`: one line per shape and precision (FP32, bf16 autocast; channels_last) with the largest rel. diff."""
    torch.set_num_threads(a.threads)
    print(machine_line(environment(a.threads, torch.device("cpu"))))
    print(f"{'channels x H x W':<18} {'precision':<9} {'conv ms':>8} {'gemm ms':>8} {'speed-up':>8} "
          f"{'max rel. diff':>13}")
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
