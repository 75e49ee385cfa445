"""Inference images/s of one config per autocast dtype, memory layout and DeepLab-v2 classifier implementation."""
from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

from .common import environment, peak_rss_mib, print_table, resolve_device, save_table, sync


def cmd_infer(a: argparse.Namespace) -> List[Dict[str, Any]]:
    """`infer`: one row per (amp, channels_last, ASPP impl) combination; speed-up over the first row."""
    from seg_uda.config import load_config
    from seg_uda.builders import build_model
    from seg_uda.models import set_aspp_impl

    torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    cfg = load_config(a.config, list(a.overrides))
    w, h = a.size or cfg.data.val_size or cfg.data.target_size
    rows = []
    impls = a.aspp_impl or [cfg.model.args.get("aspp_impl", "conv")]
    for amp, cl, aspp in itertools.product(a.amp, a.channels_last, impls):  # one row per combination
        torch.manual_seed(0)
        model = build_model(cfg).to(device).eval()
        if not set_aspp_impl(model, aspp) and aspp != "conv":
            raise SystemExit("--aspp-impl gemm needs a model with ASPP classifiers (DeepLab-v2)")
        x = torch.randn(a.batch, 3, h, w, device=device)
        if cl:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = (torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
               if amp != "none" else contextlib.nullcontext())
        with torch.inference_mode(), ctx:
            for _ in range(a.warmup):
                model(x)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(a.iters):
                model(x)["out"].float().softmax(1)
            sync(device)
        dt = (time.perf_counter() - t0) / a.iters
        rows.append({"amp": amp, "channels_last": cl, "aspp_impl": aspp, "s_per_batch": dt, "img_per_s": a.batch / dt,
                     "peak_rss_mib": peak_rss_mib()})
    base = rows[0]["s_per_batch"]
    for r in rows:
        r["speedup"] = base / r["s_per_batch"]
    md = print_table(f"inference: {Path(a.config).stem} {w}x{h} batch {a.batch} | {device.type}, {a.threads} threads",
                     rows, [("amp", "amp", "{}"), ("channels_last", "channels_last", "{}"),
                            ("ASPP", "aspp_impl", "{}"), ("s/batch", "s_per_batch", "{:.3f}"),
                            ("img/s", "img_per_s", "{:.2f}"), ("speed-up", "speedup", "{:.2f}x"),
                            ("peak RSS MiB (process)", "peak_rss_mib", "{:.0f}")])
    save_table(a.out, "infer_" + Path(a.config).stem, {"env": environment(a.threads, device), "rows": rows}, md)
    return rows
