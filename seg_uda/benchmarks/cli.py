"""`seg-uda-benchmark`: the speed and memory benchmarks' command line (one subcommand per module of this package);
`tools/benchmark.py` is a thin wrapper for a checkout."""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Optional, Sequence

import torch

from .train import variant_spec

#: subcommand -> (module of this package, function); imported on use, so no subcommand pays for another's imports
COMMANDS = {"train": ("train", "cmd_train"), "methods": ("train", "cmd_methods"),
            "_train_worker": ("train", "train_worker"), "infer": ("infer", "cmd_infer"), "data": ("data", "cmd_data"),
            "eval": ("folder_eval", "cmd_eval"), "gemm": ("gemm", "cmd_gemm"), "aspp": ("aspp", "cmd_aspp"),
            "demo": ("demo", "cmd_demo"), "depthwise": ("depthwise", "cmd_depthwise")}

#: --help text
DESCRIPTION = """Speed and memory benchmarks; each prints a table and saves it as JSON (and Markdown) under --out.

  python tools/benchmark.py train CONFIG [key=value ...] [--variants reference fp32 bf16 bf16_cl bf16_cl_gemm config]
  python tools/benchmark.py methods CONFIG [CONFIG ...] [--variant config]   # one row per method / model
  python tools/benchmark.py infer CONFIG [key=value ...] [--amp none bf16] [--iters 5]
  python tools/benchmark.py data CONFIG [key=value ...] [--workers 0 1 2] [--batches 20]
  python tools/benchmark.py eval [--num-images 20]           # folder evaluation vs cityscapesscripts
  python tools/benchmark.py gemm                             # measured fp32 / bf16 GEMM peak
  python tools/benchmark.py aspp [--threads 2]               # the DeepLab-v2 classifier alone: convolutions vs GEMM
  python tools/benchmark.py demo [--repeats 3] [--fresh-data] # `make demo` end to end, per stage
  python tools/benchmark.py depthwise CONFIG [--threads 1]   # a model's depthwise convolutions, fwd and bwd halves

``train`` runs every variant in a fresh subprocess (own peak RSS) on the same weights and synthetic batches:
``reference`` is ADVENT's loop (FP32, separate backward passes, `seg_uda.benchmarks.reference`); the others are
``Trainer.run_step`` at FP32, bf16 autocast, bf16 + channels_last, and that with the DeepLab-v2 classifiers as one
GEMM (``bf16_cl_gemm``, `seg_uda.models.deeplabv2.summed_dilated_conv3x3_gemm`); any of them with ``+compile``
runs the step under ``torch.compile`` (``schedule.compile``; the first iteration's time includes compiling).
It reports s/iter, images/s, peak RSS (and CUDA peak), the speed-up over the reference, achieved FLOP/s against
the GEMM peak measured in the same run, and the first iteration's losses against the reference's (same weights and
batch).
"""


def _variant(name: str) -> str:
    """argparse type of a train variant name (``bf16_cl``, ``fp16_cl+compile``, ...): checked, returned as is."""
    variant_spec(name)
    return name


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The subcommand and its options; ``key=value`` words anywhere after CONFIG are config overrides."""
    p = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    t.add_argument("--variants", nargs="+", default=["reference", "fp32", "bf16", "bf16_cl", "bf16_cl_gemm", "config"],
                   type=_variant)
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
    m.add_argument("--variant", default="config", type=_variant)
    m.add_argument("--iters", type=int, default=3)
    m.add_argument("--warmup", type=int, default=1)
    m.add_argument("--source-size", type=int, nargs=2, metavar=("W", "H"))
    m.add_argument("--target-size", type=int, nargs=2, metavar=("W", "H"))

    w = sub.add_parser("_train_worker")  # internal: one variant per process
    common(w)
    w.add_argument("--variant", required=True, type=_variant)
    w.add_argument("--iters", type=int, default=3)
    w.add_argument("--warmup", type=int, default=1)
    w.add_argument("--source-size", type=int, nargs=2)
    w.add_argument("--target-size", type=int, nargs=2)
    w.add_argument("--count-flops", action="store_true")
    w.add_argument("--profile", action="store_true")

    i = sub.add_parser("infer", help="inference images/s")
    common(i)
    i.add_argument("--amp", nargs="+", default=["none", "bf16"], choices=["none", "bf16", "fp16"])
    i.add_argument("--channels-last", nargs="+", type=lambda s: s.lower() in ("1", "true", "yes"),
                   default=[False, True])
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

    asp = sub.add_parser("aspp", help="DeepLab-v2 classifier alone: per-branch convolutions vs one GEMM (fwd + bwd)")
    asp.add_argument("--threads", type=int, default=torch.get_num_threads())

    dw = sub.add_parser("depthwise", help="the config's depthwise convolutions: forward, backward to input and weight")
    common(dw)
    dw.add_argument("--iters", type=int, default=10, help="timed repeats per call (median)")

    dm = sub.add_parser("demo", help="`make demo` end to end: stage times over several runs, median and range")
    common(dm, config=False)
    dm.add_argument("--repeats", type=int, default=1)
    dm.add_argument("--data", default="data/synthcity", help="cached SynthCity (generated there if absent)")
    dm.add_argument("--fresh-data", action="store_true", help="generate SynthCity in every run, as a fresh clone")
    dm.add_argument("--work", help="output folder of the demo runs (default runs/bench_demo)")
    dm.add_argument("--configs", default="configs/synthcity", help="the demo's config folder (a checkout's)")
    dm.add_argument("--method", help="the demo's adapted config (seg-uda-demo --method; default: the demo's own)")
    dm.add_argument("overrides", nargs="*", help="passed to the demo (config overrides for both runs)")

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
    """`seg-uda-benchmark` / `tools/benchmark.py`: run one subcommand."""
    a = parse_args(argv)
    if a.cmd != "_train_worker":
        torch.set_num_threads(a.threads)
    module, function = COMMANDS[a.cmd]
    getattr(importlib.import_module(f".{module}", __package__), function)(a)


if __name__ == "__main__":  # `python -m seg_uda.benchmarks.cli`: how `train` / `methods` start their workers
    main()
