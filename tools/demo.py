#!/usr/bin/env python
"""The end-to-end demo on the embedded SynthCity benchmark (what `make demo` runs).

1. generate SynthCity (skipped when DATA already holds a complete set),
2. train source-only and AdvEnt+MinEnt on the CPU budget,
3. evaluate both (JSON + confusion matrix),
4. write the per-class IoU comparison chart and the HTML report, and print where they are.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = (("source_only", "source-only"), ("advent_minent", "AdvEnt+MinEnt"))


def step(title: str, cmd: list) -> None:
    print(f"\n==> {title}\n    $ {' '.join(str(c) for c in cmd)}", flush=True)
    t0 = time.time()
    subprocess.run([str(c) for c in cmd], check=True, cwd=REPO)
    print(f"    done in {time.time() - t0:.0f} s", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/synthcity", help="SynthCity folder (generated if incomplete)")
    p.add_argument("--out", default="runs/demo", help="output folder for runs, metrics and the report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help="config overrides for both runs, e.g. schedule.max_iters=100")
    args = p.parse_args(argv)
    py, data, out = sys.executable, Path(args.data), Path(args.out)
    t0 = time.time()

    if (data / "synthcity_meta.json").is_file():
        print(f"==> SynthCity found in {data} (delete it to regenerate)")
    else:
        step("1/4 generating SynthCity", [py, "tools/generate_synthcity.py", "--out", data, "--seed", args.seed])

    data_over = [f"data.source.root={data}/game", f"data.target.root={data}/real", f"data.val.root={data}/real",
                 f"seed={args.seed}"]
    metrics = []
    for i, (method, label) in enumerate(RUNS):
        cfg = f"configs/synthcity/{method}_lite0.yaml"
        run = out / method
        step(f"2/4 training {label} ({i + 1}/{len(RUNS)})",
             [py, "tools/train.py", cfg, *data_over, *args.overrides, "--work-dir", run])
        step(f"3/4 evaluating {label}",
             [py, "tools/evaluate.py", cfg, run / "checkpoints" / "last.pth", *data_over, *args.overrides,
              "--out-json", run / "eval.json", "--confusion-png", run / "confusion.png"])
        metrics.append((run / "eval.json", label))

    report = out / "report"
    step("4/4 writing the comparison chart and the HTML report",
         [py, "tools/visualize.py", f"configs/synthcity/{RUNS[-1][0]}_lite0.yaml",
          out / RUNS[-1][0] / "checkpoints" / "last.pth", *data_over, "--out", report, "--num", "6",
          "--compare", *[m for m, _ in metrics], "--labels", *[lbl for _, lbl in metrics], "--html"])

    print(f"\nDemo finished in {(time.time() - t0) / 60:.1f} min.")
    for path, label in metrics:
        miou = json.loads(path.read_text())["miou"]
        print(f"  {label:>15}: mIoU {100 * miou:.2f}   ({path})")
    print(f"  HTML report: {report / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
