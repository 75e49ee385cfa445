"""Measured matmul peak per dtype: the yardstick for the train benchmark's achieved FLOP/s."""
from __future__ import annotations

import argparse
import time
from typing import Dict

import torch

from .common import environment, print_table, resolve_device, save_table, sync


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 1.5) -> float:
    """Measured matmul throughput in GFLOP/s for n x n x n products of ``dtype``."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if device.type == "cuda" and reps % 10:
            continue
        sync(device)
    sync(device)
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def cmd_gemm(a: argparse.Namespace) -> Dict[str, float]:
    """`gemm`: fp32 / bf16 (and fp16 on CUDA) GEMM peaks as a table, each also as a multiple of fp32's: how much a
    lower precision can gain on this machine (about 6x for bf16 with AMX fully delivered, 2-3x without)."""
    device = resolve_device(a.device)
    dtypes = [torch.float32, torch.bfloat16] + ([torch.float16] if device.type == "cuda" else [])
    peaks = {str(dt).replace("torch.", ""): gemm_peak(device, dt) for dt in dtypes}
    rows = [{"dtype": k, "gflops": v, "x_fp32": v / peaks["float32"]} for k, v in peaks.items()]
    md = print_table(f"GEMM peak ({device}, {torch.get_num_threads()} threads, 2048^3)", rows,
                     [("dtype", "dtype", "{}"), ("GFLOP/s", "gflops", "{:.0f}"), ("x float32", "x_fp32", "{:.2f}x")])
    save_table(a.out, "gemm", {"env": environment(torch.get_num_threads(), device), "gflops": peaks}, md)
    return peaks
