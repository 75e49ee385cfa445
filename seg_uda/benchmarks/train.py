"""Training-step benchmarks (`train`: one config per variant; `methods`: one row per config), each variant in a
fresh process so that its peak RSS is its own; all variants see the same weights and synthetic batches."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

from .common import environment, peak_rss_mib, print_table, resolve_device, save_table, sync
from .gemm import gemm_peak

#: train variants: (amp, channels_last, loop, DeepLab-v2 ASPP impl, 1x1 convolution impl, depthwise convolution impl);
#: None keeps the config's setting. Every name also exists with a "+compile" suffix (schedule.compile: torch.compile
#: of the training forward).
VARIANTS: Dict[str, tuple] = {
    "config": (None, None, "trainer", None, None, None),  # the config as shipped
    "reference": ("none", False, "reference", "conv", "conv", "conv"),
    "fp32": ("none", False, "trainer", "conv", "conv", "conv"),
    "fp32_cl": ("none", True, "trainer", "conv", "conv", "conv"),
    "fp32_dwflip": ("none", False, "trainer", "conv", "conv", "flipped"),  # depthwise backward as forwards
    "bf16": ("bf16", False, "trainer", "conv", "conv", "conv"),
    "bf16_cl": ("bf16", True, "trainer", "conv", "conv", "conv"),
    "bf16_cl_gemm": ("bf16", True, "trainer", "gemm", "conv", "conv"),
    "bf16_cl_gemm_pw": ("bf16", True, "trainer", "gemm", "gemm", "conv"),  # also the 1x1 convolutions as GEMMs
    "fp16_cl": ("fp16", True, "trainer", "conv", "conv", "conv"),  # CUDA only
    "fp16_cl_gemm": ("fp16", True, "trainer", "gemm", "conv", "conv"),  # CUDA only
}
COMPILE_SUFFIX = "+compile"


def variant_spec(name: str) -> tuple:
    """(amp, channels_last, loop, aspp_impl, pointwise_impl, depthwise_impl, compile) of a variant name such as
    ``bf16_cl`` or ``fp16_cl+compile``."""
    base = name[: -len(COMPILE_SUFFIX)] if name.endswith(COMPILE_SUFFIX) else name
    if base not in VARIANTS or (base == "reference" and base != name):
        valid = sorted(VARIANTS) + sorted(v + COMPILE_SUFFIX for v in VARIANTS if v != "reference")
        raise argparse.ArgumentTypeError(f"unknown variant {name!r}; valid: {valid}")
    return (*VARIANTS[base], base != name)


def synthetic_batches(cfg: Any, device: torch.device, channels_last: bool, seed: int = 0):
    """Fixed source / target batches at the configured sizes (labels with an ignored band), repeated forever."""
    g = torch.Generator().manual_seed(seed)
    b = cfg.data.batch_size
    (sw, sh), (tw, th) = cfg.data.source_size, cfg.data.target_size
    k = cfg.data.num_classes
    src_label = torch.randint(0, k, (b, sh, sw), generator=g)
    src_label[:, : sh // 10] = 255
    src = {"image": torch.randn(b, 3, sh, sw, generator=g), "label": src_label}
    tgt = {"image": torch.randn(b, 3, th, tw, generator=g), "label": torch.randint(0, k, (b, th, tw), generator=g)}

    def stream(batch: Dict[str, torch.Tensor]):
        batch = {key: v.to(device) for key, v in batch.items()}
        if channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        while True:
            yield batch
    return stream(src), stream(tgt)


def bench_trainer(cfg: Any, loop: str, batches: tuple, **kwargs: Any) -> Any:
    """A `Trainer` (or, for ``loop="reference"``, a `ReferenceTrainer`) that reads ``batches`` = (source stream,
    target stream) instead of the configured datasets."""
    from seg_uda.benchmarks.reference import ReferenceTrainer
    from seg_uda.engine.trainer import Trainer

    base = ReferenceTrainer if loop == "reference" else Trainer

    class BenchTrainer(base):  # type: ignore[misc, valid-type]
        def build_loader(self, role: str):
            return batches[0] if role == "source" else batches[1]

    return BenchTrainer(cfg, **kwargs)


def domains_used(method: Any) -> int:
    """How many of the (source, target) batches an iteration of ``method`` reads (source-only / oracle: one)."""
    return int(method.uses_source) + int(method.uses_target or method.uses_target_labels)


def train_worker(a: argparse.Namespace) -> None:
    """Runs one variant in this process and prints one JSON line (every variant, the reference loop included,
    with the trainer's allocator setting: the speed-ups compare loops, not allocators)."""
    from seg_uda.config import load_config
    from seg_uda.models.pointwise import resolve_pointwise_impl
    from seg_uda.runtime.allocator import keep_freed_memory

    keep_freed_memory()

    amp, channels_last, loop, aspp_impl, pointwise_impl, depthwise_impl, compiled = variant_spec(a.variant)
    torch.set_num_threads(a.threads)
    from seg_uda.runtime import dist

    device = dist.init_distributed(a.device)  # under torchrun: this rank's GPU, DDP
    overrides = list(a.overrides) + ["data.val=null", f"device={device.type}", "seed=0"]
    if compiled:
        overrides.append("schedule.compile=true")
    if amp is not None:
        overrides += [f"schedule.amp={amp}", f"model.channels_last={str(channels_last).lower()}"]
    if a.source_size:
        overrides.append(f"data.source_size=[{a.source_size[0]},{a.source_size[1]}]")
    if a.target_size:
        overrides.append(f"data.target_size=[{a.target_size[0]},{a.target_size[1]}]")
    cfg = load_config(a.config, overrides)
    amp, channels_last = cfg.schedule.amp, cfg.model.channels_last
    aspp_impl = aspp_impl or cfg.model.args.get("aspp_impl", "conv")
    pointwise_impl = resolve_pointwise_impl(pointwise_impl or cfg.model.args.get("pointwise_impl", "conv"))
    depthwise_impl = depthwise_impl or cfg.model.args.get("depthwise_impl", "conv")
    with tempfile.TemporaryDirectory() as work_dir:
        trainer = bench_trainer(cfg, loop, synthetic_batches(cfg, device, channels_last), work_dir=work_dir,
                                progress=False)
        from seg_uda.models import set_aspp_impl, set_depthwise_impl, set_pointwise_impl

        if not set_aspp_impl(trainer.model, aspp_impl) and aspp_impl != "conv":
            raise SystemExit(f"variant {a.variant} needs a model with ASPP classifiers (DeepLab-v2)")
        set_pointwise_impl(trainer.model, pointwise_impl)
        set_depthwise_impl(trainer.model, depthwise_impl)

        def step() -> Dict[str, float]:
            values = trainer.run_step()
            trainer.iteration += 1
            return values

        t0 = time.perf_counter()
        first = step()  # iteration 0: same weights and batch in every variant -> comparable losses
        first_s = time.perf_counter() - t0  # includes compilation for "+compile" variants
        for _ in range(a.warmup - 1):
            step()
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - t0)
        flops = None
        if a.count_flops:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            with counter:
                step()
            flops = int(counter.get_total_flops())
        profile_table = None
        if a.profile:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=acts, record_shapes=True) as prof:
                step()
                sync(device)
            key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            profile_table = prof.key_averages(group_by_input_shape=True).table(  # one row per op and shape
                sort_by=key, row_limit=25, max_name_column_width=30, max_shapes_column_width=90)
    res = {"variant": a.variant, "method": cfg.method.name,
           "model": f"{cfg.model.name}/{cfg.model.args.get('encoder_name')}",
           "source_size": list(cfg.data.source_size), "target_size": list(cfg.data.target_size),
           "amp": amp, "channels_last": channels_last, "loop": loop, "aspp_impl": aspp_impl,
           "pointwise_impl": pointwise_impl, "depthwise_impl": depthwise_impl,
           "compile": bool(cfg.schedule.compile), "first_step_s": first_s, "times": times,
           "s_per_iter": sorted(times)[len(times) // 2], "first_losses": first,
           "peak_rss_mib": peak_rss_mib(), "flops": flops,
           "images_per_iter": cfg.data.batch_size * domains_used(trainer.method), "profile": profile_table}
    if device.type == "cuda":
        res["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    res["world_size"] = dist.get_world_size()
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(res))


def run_train_worker(a: argparse.Namespace, config: str, variant: str, count_flops: bool) -> Dict[str, Any]:
    """Run one variant of ``config`` in a fresh process (own peak RSS); returns its result row."""
    cmd = [sys.executable, "-m", "seg_uda.benchmarks.cli", "_train_worker", config, *a.overrides, "--variant", variant,
           "--iters", str(a.iters), "--warmup", str(a.warmup), "--threads", str(a.threads), "--device", a.device]
    if a.source_size:
        cmd += ["--source-size", *map(str, a.source_size)]
    if a.target_size:
        cmd += ["--target-size", *map(str, a.target_size)]
    if count_flops:
        cmd.append("--count-flops")
    if getattr(a, "profile", False):
        cmd.append("--profile")
    print(f"[{time.strftime('%H:%M:%S')}] {variant}: {' '.join(cmd[3:])}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{config}: variant {variant} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def cmd_methods(a: argparse.Namespace) -> List[Dict[str, Any]]:
    """Training speed of several configs (methods / models) at one variant: one row per config."""
    rows = []
    for config in a.configs:
        r = run_train_worker(a, config, a.variant, count_flops=False)
        r["config"] = Path(config).stem
        r["it_per_s"], r["img_per_s"] = 1.0 / r["s_per_iter"], r["images_per_iter"] / r["s_per_iter"]
        r["sizes"] = "{}x{} / {}x{}".format(*r["source_size"], *r["target_size"])
        rows.append(r)
    md = print_table(f"train step per method: variant {a.variant} | {resolve_device(a.device).type}, {a.threads} "
                     f"threads | median of {a.iters} iters after {a.warmup} warm-up",
                     rows, [("config", "config", "{}"), ("method", "method", "{}"), ("model", "model", "{}"),
                            ("source / target", "sizes", "{}"), ("amp", "amp", "{}"),
                            ("s/iter", "s_per_iter", "{:.3f}"), ("it/s", "it_per_s", "{:.2f}"),
                            ("img/s", "img_per_s", "{:.2f}"), ("peak RSS MiB", "peak_rss_mib", "{:.0f}")])
    save_table(a.out, "methods", {"env": environment(a.threads, resolve_device(a.device)), "rows": rows}, md)
    return rows


def cmd_train(a: argparse.Namespace) -> List[Dict[str, Any]]:
    """`train`: every variant of one config; speed-up, memory, FLOP/s vs the GEMM peak, loss agreement."""
    device = resolve_device(a.device)
    if device.type != "cuda":
        bad = [v for v in a.variants if variant_spec(v)[0] == "fp16"]
        if bad:
            raise SystemExit(f"variants {bad} need CUDA")
    from seg_uda.config import load_config
    from seg_uda.models.pointwise import resolve_pointwise_impl

    cfg = load_config(a.config, list(a.overrides))
    default = ("trainer", cfg.schedule.amp, cfg.model.channels_last, cfg.model.args.get("aspp_impl", "conv"),
               resolve_pointwise_impl(cfg.model.args.get("pointwise_impl", "conv")),
               cfg.model.args.get("depthwise_impl", "conv"), cfg.schedule.compile)
    rows: List[Dict[str, Any]] = []
    for variant in a.variants:
        rows.append(run_train_worker(a, a.config, variant, count_flops=a.count_flops and variant == a.variants[0]))
        r = rows[-1]  # FLOPs do not depend on precision or layout: counted once, for the first variant
        if variant != "config" and (r["loop"], r["amp"], r["channels_last"], r["aspp_impl"], r["pointwise_impl"],
                                   r["depthwise_impl"], r["compile"]) == default:
            r["variant"] += " (config default)"
    peaks = {"none": gemm_peak(device, torch.float32), "bf16": gemm_peak(device, torch.bfloat16)}
    if device.type == "cuda":
        peaks["fp16"] = gemm_peak(device, torch.float16)
    flops = next((r["flops"] for r in rows if r["flops"]), None)
    ref = next((r for r in rows if r["loop"] == "reference"), rows[0])
    for r in rows:
        r["it_per_s"] = 1.0 / r["s_per_iter"]
        r["img_per_s"] = r["images_per_iter"] / r["s_per_iter"]
        r["speedup"] = ref["s_per_iter"] / r["s_per_iter"]
        r["rss_vs_ref"] = r["peak_rss_mib"] / ref["peak_rss_mib"]
        if flops:
            r["gflops"] = flops / r["s_per_iter"] / 1e9
            r["peak_gflops"] = peaks[r["amp"]]
            r["peak_frac"] = r["gflops"] / peaks[r["amp"]]
        common = set(r["first_losses"]) & set(ref["first_losses"])
        r["max_loss_rel_diff"] = max((abs(r["first_losses"][k] - ref["first_losses"][k])
                                      / max(abs(ref["first_losses"][k]), 1e-12) for k in common), default=None)
    (sw, sh) = a.source_size or cfg.data.source_size
    title = (f"train step: {Path(a.config).stem} {' '.join(a.overrides)} | source {sw}x{sh} | "
             f"{device.type}, {a.threads} threads | median of {a.iters} iters after {a.warmup} warm-up"
             + (f" | {flops / 1e12:.2f} TFLOP/iter" if flops else ""))
    cols = [("variant", "variant", "{}"), ("s/iter", "s_per_iter", "{:.3f}"),
            ("first iter s", "first_step_s", "{:.1f}"), ("it/s", "it_per_s", "{:.3f}"),
            ("img/s", "img_per_s", "{:.2f}"), ("speed-up", "speedup", "{:.2f}x"),
            ("peak RSS MiB", "peak_rss_mib", "{:.0f}"), ("RSS/ref", "rss_vs_ref", "{:.2f}"),
            ("GFLOP/s", "gflops", "{:.0f}"), ("GEMM peak", "peak_gflops", "{:.0f}"),
            ("of peak", "peak_frac", "{:.0%}"), ("loss rel. diff vs ref", "max_loss_rel_diff", "{:.1e}")]
    if device.type == "cuda":
        cols.insert(6, ("CUDA peak MiB", "cuda_peak_mib", "{:.0f}"))
    md = print_table(title, rows, cols)
    for r in rows:
        if r.get("profile"):
            print(f"\nprofile of one iteration, {r['variant']} (top ops and input shapes by self time):"
                  f"\n{r['profile']}")
    print("first-iteration losses:")
    for r in rows:
        print(f"  {r['variant']:<10} " + ", ".join(f"{k}={v:.5g}" for k, v in sorted(r["first_losses"].items())))
    save_table(a.out, "train_" + Path(a.config).stem,
               {"env": environment(a.threads, device), "gemm_peak_gflops": peaks, "flops_per_iter": flops,
                "rows": rows}, md)
    return rows
