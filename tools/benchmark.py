#!/usr/bin/env python
"""Speed and memory benchmarks; each prints a table and saves it as JSON (and Markdown) under --out.

  python tools/benchmark.py train CONFIG [key=value ...] [--variants reference fp32 bf16 bf16_cl bf16_cl_gemm]
  python tools/benchmark.py methods CONFIG [CONFIG ...] [--variant config]   # one row per method / model
  python tools/benchmark.py infer CONFIG [key=value ...] [--amp none bf16] [--iters 5]
  python tools/benchmark.py data CONFIG [key=value ...] [--workers 0 1 2] [--batches 20]
  python tools/benchmark.py eval [--num-images 20]           # folder evaluation vs cityscapesscripts
  python tools/benchmark.py gemm                             # measured fp32 / bf16 GEMM peak

``train`` runs every variant in a fresh subprocess (own peak RSS) on the same weights and synthetic batches:
``reference`` is ADVENT's loop (FP32, separate backward passes, `seg_uda.engine.reference`); the others are
``Trainer.run_step`` at FP32, bf16 autocast, bf16 + channels_last, and that with the DeepLab-v2 classifiers as one
GEMM (``bf16_cl_gemm``, `seg_uda.models.deeplabv2.summed_dilated_conv3x3_gemm`). It reports s/iter, images/s, peak RSS
(and CUDA peak), the speed-up over the reference, achieved FLOP/s against the GEMM peak measured in the same run,
and the first iteration's losses against the reference's (same weights and batch).
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

#: train variants: (amp, channels_last, loop, DeepLab-v2 ASPP impl); None keeps the config's setting
VARIANTS: Dict[str, tuple] = {
    "config": (None, None, "trainer", None),  # the config as shipped
    "reference": ("none", False, "reference", "conv"),
    "fp32": ("none", False, "trainer", "conv"),
    "bf16": ("bf16", False, "trainer", "conv"),
    "bf16_cl": ("bf16", True, "trainer", "conv"),
    "bf16_cl_gemm": ("bf16", True, "trainer", "gemm"),
    "fp16_cl": ("fp16", True, "trainer", "conv"),  # CUDA only
    "fp16_cl_gemm": ("fp16", True, "trainer", "gemm"),  # CUDA only
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _print_table(title: str, rows: List[Dict[str, Any]], cols: Sequence[tuple]) -> str:
    """Print rows as an aligned table and return it as Markdown."""
    head = [c[0] for c in cols]
    cells = [[(c[2].format(r[c[1]]) if r.get(c[1]) is not None else "-") for c in cols] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(head)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    md = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(md) + "\n"


def _save(out: Optional[str], name: str, payload: Dict[str, Any], markdown: str) -> None:
    if not out:
        return
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (d / f"{name}.md").write_text(markdown)
    print(f"saved {d / (name + '.json')} and {d / (name + '.md')}")


def _environment(threads: int, device: torch.device) -> Dict[str, Any]:
    env = {"torch": torch.__version__, "threads": threads, "cpu_count": os.cpu_count(), "device": str(device),
           "loadavg_1min": round(os.getloadavg()[0], 2), "command": " ".join(sys.argv)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


# ----------------------------------------------------------------------------------------------- GEMM peak
def gemm_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 1.5) -> float:
    """Measured matmul throughput in GFLOP/s for n x n x n products of ``dtype``."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if device.type == "cuda" and reps % 10:
            continue
        _sync(device)
    _sync(device)
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def cmd_gemm(a: argparse.Namespace) -> Dict[str, float]:
    device = _device(a.device)
    dtypes = [torch.float32, torch.bfloat16] + ([torch.float16] if device.type == "cuda" else [])
    peaks = {str(dt).replace("torch.", ""): gemm_peak(device, dt) for dt in dtypes}
    rows = [{"dtype": k, "gflops": v} for k, v in peaks.items()]
    md = _print_table(f"GEMM peak ({device}, {torch.get_num_threads()} threads, 2048^3)", rows,
                      [("dtype", "dtype", "{}"), ("GFLOP/s", "gflops", "{:.0f}")])
    _save(a.out, "gemm", {"env": _environment(torch.get_num_threads(), device), "gflops": peaks}, md)
    return peaks


# ----------------------------------------------------------------------------------------------- train step
def _synthetic_batches(cfg: Any, device: torch.device, channels_last: bool, seed: int = 0):
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


def _domains_used(method: Any) -> int:
    """How many of the (source, target) batches an iteration of ``method`` reads (source-only / oracle: one)."""
    return int(method.uses_source) + int(method.uses_target or method.uses_target_labels)


def _train_worker(a: argparse.Namespace) -> None:
    """Runs one variant in this process and prints one JSON line."""
    from seg_uda.config import load_config
    from seg_uda.engine.trainer import Trainer

    amp, channels_last, loop, aspp_impl = VARIANTS[a.variant]
    torch.set_num_threads(a.threads)
    device = _device(a.device)
    overrides = list(a.overrides) + ["data.val=null", f"device={device.type}", "seed=0"]
    if amp is not None:
        overrides += [f"schedule.amp={amp}", f"model.channels_last={str(channels_last).lower()}"]
    if a.source_size:
        overrides.append(f"data.source_size=[{a.source_size[0]},{a.source_size[1]}]")
    if a.target_size:
        overrides.append(f"data.target_size=[{a.target_size[0]},{a.target_size[1]}]")
    cfg = load_config(a.config, overrides)
    amp, channels_last = cfg.schedule.amp, cfg.model.channels_last
    aspp_impl = aspp_impl or cfg.model.args.get("aspp_impl", "conv")
    with tempfile.TemporaryDirectory() as work_dir:
        trainer = Trainer(cfg, work_dir=work_dir, progress=False, reference=loop == "reference",
                          batches=_synthetic_batches(cfg, device, channels_last))
        from seg_uda.models import set_aspp_impl

        if not set_aspp_impl(trainer.model, aspp_impl) and aspp_impl != "conv":
            raise SystemExit(f"variant {a.variant} needs a model with ASPP classifiers (DeepLab-v2)")

        def step() -> Dict[str, float]:
            values = trainer.run_step()
            trainer.iteration += 1
            return values

        first = step()  # iteration 0: same weights and batch in every variant -> comparable losses
        for _ in range(a.warmup - 1):
            step()
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            step()
            _sync(device)
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
                _sync(device)
            key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            profile_table = prof.key_averages(group_by_input_shape=True).table(  # one row per op and shape
                sort_by=key, row_limit=25, max_name_column_width=30, max_shapes_column_width=90)
    res = {"variant": a.variant, "method": cfg.method.name,
           "model": f"{cfg.model.name}/{cfg.model.args.get('encoder_name')}",
           "source_size": list(cfg.data.source_size), "target_size": list(cfg.data.target_size),
           "amp": amp, "channels_last": channels_last, "loop": loop, "aspp_impl": aspp_impl,
           "times": times, "s_per_iter": sorted(times)[len(times) // 2], "first_losses": first,
           "peak_rss_mib": _peak_rss_mib(), "flops": flops,
           "images_per_iter": cfg.data.batch_size * _domains_used(trainer.method), "profile": profile_table}
    if device.type == "cuda":
        res["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    print("RESULT " + json.dumps(res))


def _run_train_worker(a: argparse.Namespace, config: str, variant: str, count_flops: bool) -> Dict[str, Any]:
    """Run one variant of ``config`` in a fresh process (own peak RSS); returns its result row."""
    cmd = [sys.executable, __file__, "_train_worker", config, *a.overrides, "--variant", variant,
           "--iters", str(a.iters), "--warmup", str(a.warmup), "--threads", str(a.threads), "--device", a.device]
    if a.source_size:
        cmd += ["--source-size", *map(str, a.source_size)]
    if a.target_size:
        cmd += ["--target-size", *map(str, a.target_size)]
    if count_flops:
        cmd.append("--count-flops")
    if getattr(a, "profile", False):
        cmd.append("--profile")
    print(f"[{time.strftime('%H:%M:%S')}] {variant}: {' '.join(cmd[2:])}", flush=True)
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
        r = _run_train_worker(a, config, a.variant, count_flops=False)
        r["config"] = Path(config).stem
        r["it_per_s"], r["img_per_s"] = 1.0 / r["s_per_iter"], r["images_per_iter"] / r["s_per_iter"]
        r["sizes"] = "{}x{} / {}x{}".format(*r["source_size"], *r["target_size"])
        rows.append(r)
    md = _print_table(f"train step per method: variant {a.variant} | {_device(a.device).type}, {a.threads} threads | "
                      f"median of {a.iters} iters after {a.warmup} warm-up",
                      rows, [("config", "config", "{}"), ("method", "method", "{}"), ("model", "model", "{}"),
                             ("source / target", "sizes", "{}"), ("amp", "amp", "{}"), ("s/iter", "s_per_iter", "{:.3f}"),
                             ("it/s", "it_per_s", "{:.2f}"), ("img/s", "img_per_s", "{:.2f}"),
                             ("peak RSS MiB", "peak_rss_mib", "{:.0f}")])
    _save(a.out, "methods", {"env": _environment(a.threads, _device(a.device)), "rows": rows}, md)
    return rows


def cmd_train(a: argparse.Namespace) -> List[Dict[str, Any]]:
    device = _device(a.device)
    if device.type != "cuda":
        bad = [v for v in a.variants if VARIANTS[v][0] == "fp16"]
        if bad:
            raise SystemExit(f"variants {bad} need CUDA")
    from seg_uda.config import load_config

    cfg = load_config(a.config, list(a.overrides))
    default = ("trainer", cfg.schedule.amp, cfg.model.channels_last, cfg.model.args.get("aspp_impl", "conv"))
    rows: List[Dict[str, Any]] = []
    for variant in a.variants:
        rows.append(_run_train_worker(a, a.config, variant, count_flops=a.count_flops and variant == a.variants[0]))
        r = rows[-1]  # FLOPs do not depend on precision or layout: counted once, for the first variant
        if variant != "config" and (r["loop"], r["amp"], r["channels_last"], r["aspp_impl"]) == default:
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
    cols = [("variant", "variant", "{}"), ("s/iter", "s_per_iter", "{:.3f}"), ("it/s", "it_per_s", "{:.3f}"),
            ("img/s", "img_per_s", "{:.2f}"), ("speed-up", "speedup", "{:.2f}x"),
            ("peak RSS MiB", "peak_rss_mib", "{:.0f}"), ("RSS/ref", "rss_vs_ref", "{:.2f}"),
            ("GFLOP/s", "gflops", "{:.0f}"), ("GEMM peak", "peak_gflops", "{:.0f}"),
            ("of peak", "peak_frac", "{:.0%}"), ("loss rel. diff vs ref", "max_loss_rel_diff", "{:.1e}")]
    if device.type == "cuda":
        cols.insert(6, ("CUDA peak MiB", "cuda_peak_mib", "{:.0f}"))
    md = _print_table(title, rows, cols)
    for r in rows:
        if r.get("profile"):
            print(f"\nprofile of one iteration, {r['variant']} (top ops and input shapes by self time):\n{r['profile']}")
    print("first-iteration losses:")
    for r in rows:
        print(f"  {r['variant']:<10} " + ", ".join(f"{k}={v:.5g}" for k, v in sorted(r["first_losses"].items())))
    _save(a.out, "train_" + Path(a.config).stem,
          {"env": _environment(a.threads, device), "gemm_peak_gflops": peaks, "flops_per_iter": flops,
           "rows": rows}, md)
    return rows


# ----------------------------------------------------------------------------------------------- inference
def cmd_infer(a: argparse.Namespace) -> List[Dict[str, Any]]:
    from seg_uda.config import load_config
    from seg_uda.engine.builders import build_model
    from seg_uda.models import set_aspp_impl

    torch.set_num_threads(a.threads)
    device = _device(a.device)
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
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(a.iters):
                model(x)["out"].float().softmax(1)
            _sync(device)
        dt = (time.perf_counter() - t0) / a.iters
        rows.append({"amp": amp, "channels_last": cl, "aspp_impl": aspp, "s_per_batch": dt, "img_per_s": a.batch / dt,
                     "peak_rss_mib": _peak_rss_mib()})
    base = rows[0]["s_per_batch"]
    for r in rows:
        r["speedup"] = base / r["s_per_batch"]
    md = _print_table(f"inference: {Path(a.config).stem} {w}x{h} batch {a.batch} | {device.type}, {a.threads} threads",
                      rows, [("amp", "amp", "{}"), ("channels_last", "channels_last", "{}"),
                             ("ASPP", "aspp_impl", "{}"), ("s/batch", "s_per_batch", "{:.3f}"), ("img/s", "img_per_s", "{:.2f}"),
                             ("speed-up", "speedup", "{:.2f}x"), ("peak RSS MiB (process)", "peak_rss_mib", "{:.0f}")])
    _save(a.out, "infer_" + Path(a.config).stem, {"env": _environment(a.threads, device), "rows": rows}, md)
    return rows


# ----------------------------------------------------------------------------------------------- data pipeline
def cmd_data(a: argparse.Namespace) -> List[Dict[str, Any]]:
    from seg_uda.config import load_config
    from seg_uda.engine.builders import build_dataset
    from seg_uda.engine.sampling import infinite_loader

    cfg = load_config(a.config, list(a.overrides))
    rows = []
    for role in a.roles:
        ds = build_dataset(cfg, role)
        for nw in a.workers:
            it = infinite_loader(ds, cfg.data.batch_size, seed=0, rank=0, world_size=1, num_workers=nw)
            for _ in range(min(3, a.batches)):  # worker start-up is not throughput
                next(it)
            t0 = time.perf_counter()
            for _ in range(a.batches):
                next(it)
            dt = time.perf_counter() - t0
            del it
            rows.append({"role": role, "workers": nw, "img_per_s": a.batches * cfg.data.batch_size / dt,
                         "ms_per_img": 1000 * dt / (a.batches * cfg.data.batch_size)})
    md = _print_table(f"data pipeline: {Path(a.config).stem} (decode + augment + collate)", rows,
                      [("role", "role", "{}"), ("workers", "workers", "{}"), ("img/s", "img_per_s", "{:.1f}"),
                       ("ms/img", "ms_per_img", "{:.1f}")])
    _save(a.out, "data_" + Path(a.config).stem, {"env": _environment(torch.get_num_threads(), torch.device("cpu")),
                                                 "rows": rows}, md)
    return rows


# ----------------------------------------------------------------------------------------------- folder eval
def cmd_eval(a: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_folder_eval

    argv = ["--num-images", str(a.num_images), "--skip-instances"]
    if a.out:
        argv += ["--out", str(Path(a.out) / "eval_folder.json")]
    bench_folder_eval.main(argv)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            sp.add_argument("config")
            sp.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
        sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        sp.add_argument("--threads", type=int, default=torch.get_num_threads())
        sp.add_argument("--out", default="runs/bench", help="folder for the JSON / Markdown tables ('' = none)")

    t = sub.add_parser("train", help="training-step speed, memory and loss agreement per variant")
    common(t)
    t.add_argument("--variants", nargs="+", default=["reference", "fp32", "bf16", "bf16_cl", "bf16_cl_gemm"],
                   choices=list(VARIANTS))
    t.add_argument("--iters", type=int, default=3)
    t.add_argument("--warmup", type=int, default=1, help="iterations before timing (>= 1)")
    t.add_argument("--source-size", type=int, nargs=2, metavar=("W", "H"))
    t.add_argument("--target-size", type=int, nargs=2, metavar=("W", "H"))
    t.add_argument("--no-flops", dest="count_flops", action="store_false", help="skip the FLOP count")
    t.add_argument("--profile", action="store_true", help="also profile one iteration per variant (torch.profiler)")

    m = sub.add_parser("methods", help="training speed of several configs (one row per method / model)")
    m.add_argument("configs", nargs="+", help="configs, then key=value overrides applied to every one")
    common(m, config=False)
    m.set_defaults(overrides=[])
    m.add_argument("--variant", default="config", choices=list(VARIANTS))
    m.add_argument("--iters", type=int, default=3)
    m.add_argument("--warmup", type=int, default=1)
    m.add_argument("--source-size", type=int, nargs=2, metavar=("W", "H"))
    m.add_argument("--target-size", type=int, nargs=2, metavar=("W", "H"))

    w = sub.add_parser("_train_worker")  # internal: one variant per process
    common(w)
    w.add_argument("--variant", required=True, choices=list(VARIANTS))
    w.add_argument("--iters", type=int, default=3)
    w.add_argument("--warmup", type=int, default=1)
    w.add_argument("--source-size", type=int, nargs=2)
    w.add_argument("--target-size", type=int, nargs=2)
    w.add_argument("--count-flops", action="store_true")
    w.add_argument("--profile", action="store_true")

    i = sub.add_parser("infer", help="inference images/s")
    common(i)
    i.add_argument("--amp", nargs="+", default=["none", "bf16"], choices=["none", "bf16", "fp16"])
    i.add_argument("--channels-last", nargs="+", type=lambda s: s.lower() in ("1", "true", "yes"), default=[False, True])
    i.add_argument("--aspp-impl", nargs="+", choices=["conv", "gemm"],
                   help="DeepLab-v2 classifier implementations to compare (default: the config's)")
    i.add_argument("--size", type=int, nargs=2, metavar=("W", "H"))
    i.add_argument("--batch", type=int, default=1)
    i.add_argument("--iters", type=int, default=5)
    i.add_argument("--warmup", type=int, default=2)

    d = sub.add_parser("data", help="data-pipeline images/s with N loader workers")
    common(d)
    d.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    d.add_argument("--roles", nargs="+", default=["source", "target"])
    d.add_argument("--batches", type=int, default=30)

    e = sub.add_parser("eval", help="prediction-folder evaluation vs cityscapesscripts (same mIoU, speed ratio)")
    common(e, config=False)
    e.add_argument("--num-images", type=int, default=20)

    g = sub.add_parser("gemm", help="measured GEMM peak per dtype")
    common(g, config=False)
    args, rest = p.parse_known_args(argv)  # overrides may also follow the options
    bad = [r for r in rest if r.startswith("-") or "=" not in r or not hasattr(args, "overrides")]
    if bad:
        p.error(f"unrecognized arguments: {' '.join(bad)}")
    if args.cmd == "methods":  # key=value positionals are overrides, not configs
        args.overrides = [c for c in args.configs if "=" in c and not Path(c).exists()]
        args.configs = [c for c in args.configs if c not in args.overrides]
        if not args.configs:
            p.error("methods: give at least one config")
    if rest:
        args.overrides = list(args.overrides) + rest
    if getattr(args, "warmup", 1) < 1 and args.cmd in ("train", "_train_worker"):
        p.error("--warmup must be >= 1 (the first iteration gives the compared losses)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    a = parse_args(argv)
    if a.cmd != "_train_worker":
        torch.set_num_threads(a.threads)
    {"train": cmd_train, "methods": cmd_methods, "_train_worker": _train_worker, "infer": cmd_infer, "data": cmd_data,
     "eval": cmd_eval, "gemm": cmd_gemm}[a.cmd](a)


if __name__ == "__main__":
    main()
