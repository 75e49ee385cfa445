"""The depthwise convolutions of a config's model, one row per layer shape: forward, backward to the input and
backward to the weight, in NCHW and channels-last, with achieved GFLOP/s, and the backward of
`model.depthwise_impl=flipped`. What the CPU default's step spends on them (the Lite0 profile is led by their
backward; docs/speed.md section 2)."""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..models.depthwise import set_depthwise_impl
from .common import environment, print_table, save_table

Key = Tuple[tuple, tuple, tuple, tuple, tuple]  # input shape, weight shape, stride, padding, dilation


class _RecordDepthwise(TorchFunctionMode):
    """Counts the depthwise `F.conv2d` calls (groups = input channels > 1) by their shapes and arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Dict[Key, int] = {}

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.conv2d:
            x, w = args[0], args[1]
            names = ("bias", "stride", "padding", "dilation", "groups")
            opts = {**dict(zip(names, args[2:])), **kwargs}
            groups = opts.get("groups", 1)
            if groups > 1 and groups == x.shape[1] == w.shape[0]:
                pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
                key = (tuple(x.shape), tuple(w.shape), pair(opts.get("stride", 1)), pair(opts.get("padding", 0)),
                       pair(opts.get("dilation", 1)))
                self.calls[key] = self.calls.get(key, 0) + 1
        return func(*args, **kwargs)


def depthwise_calls(model: torch.nn.Module, batches: List[torch.Tensor]) -> Dict[Key, int]:
    """The depthwise convolutions one forward of each batch runs, counted per distinct call."""
    rec = _RecordDepthwise()
    with torch.no_grad(), rec:
        for b in batches:
            model(b)
    return rec.calls


def _median_ms(fn: Callable[[], Any], iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def time_call(key: Key, iters: int, seed: int = 0) -> Dict[str, float]:
    """Forward and both backward halves of one depthwise call (aten.convolution_backward, as autograd runs it)."""
    shape, wshape, stride, padding, dilation = key
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    w = torch.randn(wshape, generator=g)
    c = shape[1]
    y = F.conv2d(x, w, None, stride, padding, dilation, c)
    gy = torch.randn(y.shape, generator=g)
    bwd = torch.ops.aten.convolution_backward
    args = (None, list(stride), list(padding), list(dilation), False, [0, 0], c)
    cl = torch.channels_last
    xc, gyc = x.contiguous(memory_format=cl), gy.contiguous(memory_format=cl)
    macs = y.numel() * wshape[-1] * wshape[-2]
    row = {"forward": _median_ms(lambda: F.conv2d(x, w, None, stride, padding, dilation, c), iters),
           "grad_input": _median_ms(lambda: bwd(gy, x, w, *args, [True, False, False]), iters),
           "grad_weight": _median_ms(lambda: bwd(gy, x, w, *args, [False, True, False]), iters),
           "grad_weight_cl": _median_ms(lambda: bwd(gyc, xc, w, *args, [False, True, False]), iters)}
    row["grad_weight_gflops"] = 2 * macs / row["grad_weight"] / 1e6
    for impl in ("conv", "flipped"):  # both halves through autograd, as a training step runs them
        holder = nn.Sequential(nn.Conv2d(c, c, wshape[-2:], stride, padding, dilation, c, bias=False))
        holder[0].weight = nn.Parameter(w.clone())
        if set_depthwise_impl(holder, impl) == 0 and impl == "flipped":  # stride 2: it keeps oneDNN's backward
            continue
        conv = holder[0]
        leaf = x.clone().requires_grad_(True)
        out = conv(leaf)
        row[f"backward_{impl}"] = _median_ms(
            lambda: torch.autograd.grad(out, (leaf, conv.weight), gy, retain_graph=True), iters)
    return row


def cmd_depthwise(a: argparse.Namespace) -> List[Dict[str, Any]]:
    """`depthwise`: one row per depthwise call of one training step's forwards (source and target batch), and the
    step's totals per kernel size (each call counted as often as a step runs it). "bwd ms": both gradients through
    autograd, oneDNN's and `model.depthwise_impl=flipped`'s (which keeps oneDNN's for the calls it does not take)."""
    from seg_uda.builders import build_model
    from seg_uda.config import load_config

    torch.set_num_threads(a.threads)
    cfg = load_config(a.config, list(a.overrides))
    model = build_model(cfg).eval()
    b = cfg.data.batch_size
    (sw, sh), (tw, th) = cfg.data.source_size, cfg.data.target_size
    calls = depthwise_calls(model, [torch.zeros(b, 3, sh, sw), torch.zeros(b, 3, th, tw)])
    rows: List[Dict[str, Any]] = []
    for key, n in sorted(calls.items(), key=lambda kv: (-kv[0][1][-1], -kv[0][0][1], kv[0][0])):
        shape, wshape, stride, _, dilation = key
        rows.append({"layer": f"{shape[1]}ch {wshape[-2]}x{wshape[-1]} s{stride[0]} d{dilation[0]} "
                              f"{shape[2]}x{shape[3]}", "kernel": wshape[-1], "calls": n,
                     **time_call(key, a.iters)})
    totals = []
    for k in sorted({r["kernel"] for r in rows}, reverse=True):
        sel = [r for r in rows if r["kernel"] == k]
        totals.append({"layer": f"step total, {k}x{k}", "calls": sum(r["calls"] for r in sel),
                       **{f: sum(r[f] * r["calls"] for r in sel)
                          for f in ("forward", "grad_input", "grad_weight", "grad_weight_cl", "backward_conv")}})
        flipped = [r for r in sel if "backward_flipped" in r]
        totals[-1]["backward_flipped"] = (sum(r["backward_flipped"] * r["calls"] for r in flipped)
                                          + sum(r["backward_conv"] * r["calls"] for r in sel if r not in flipped))
    cols = [("depthwise call (input)", "layer", "{}"), ("per step", "calls", "{}"), ("fwd ms", "forward", "{:.1f}"),
            ("bwd input ms", "grad_input", "{:.1f}"), ("bwd weight ms", "grad_weight", "{:.1f}"),
            ("bwd weight GFLOP/s", "grad_weight_gflops", "{:.1f}"),
            ("bwd weight, channels-last ms", "grad_weight_cl", "{:.1f}"), ("bwd ms", "backward_conv", "{:.1f}"),
            ("bwd ms, depthwise_impl=flipped", "backward_flipped", "{:.1f}")]
    md = print_table(f"depthwise convolutions of {cfg.name} ({a.threads} threads, median of {a.iters})",
                     rows + totals, cols)
    save_table(a.out, f"depthwise_{cfg.name}", {"env": environment(a.threads, torch.device("cpu")),
                                                "rows": rows, "totals": totals}, md)
    return rows + totals
