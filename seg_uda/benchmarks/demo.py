"""`demo`: the whole `make demo` (SynthCity generation, two trainings, report) timed end to end, per stage, over
several runs in fresh output folders; the median and range of each stage (seg_uda/cli/demo.py writes the stage
times)."""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import torch

from .common import environment, print_table, save_table

STAGES = ("SynthCity generation", "training (both models)", "report")


def cmd_demo(a: argparse.Namespace) -> List[Dict[str, Any]]:
    """Run the demo (`seg-uda-demo`) ``--repeats`` times; ``--fresh-data`` regenerates SynthCity in each run (a
    fresh clone)."""
    root = Path(a.work or "runs/bench_demo")
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(a.repeats):
        out = root / f"run{i}"
        shutil.rmtree(out, ignore_errors=True)
        data = out / "synthcity" if a.fresh_data else Path(a.data)
        cmd = [sys.executable, "-m", "seg_uda.cli.demo", "--data", str(data), "--out", str(out), "--configs", a.configs,
               *(["--method", a.method] if a.method else []), *a.overrides]
        log = root / f"run{i}.log"  # beside, not inside, the demo's own output folder
        print(f"[run {i + 1}/{a.repeats}] {' '.join(cmd)}  > {log}", flush=True)
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise SystemExit(f"demo run {i + 1} failed (exit {proc.returncode}); see {log}")
        summary = json.loads((out / "demo_summary.json").read_text())
        rows.append({"run": str(i + 1), **{s: summary["stage_minutes"].get(s) for s in STAGES},
                     "total": summary["total_minutes"], "gain": summary["gain"]})
        if a.fresh_data:
            shutil.rmtree(data, ignore_errors=True)
    cols = [("run", "run", "{}")] + [(f"{s}, min", s, "{:.1f}") for s in STAGES] + [
        ("total, min", "total", "{:.1f}"), ("gain, mIoU", "gain", "{:+.2f}")]
    ranges = []
    if len(rows) > 1:
        summ: Dict[str, Any] = {"run": "median (range)"}
        for s in (*STAGES, "total"):
            vals = [r[s] for r in rows if r[s] is not None]
            summ[s] = statistics.median(vals) if vals else None
            summ[s + " range"] = (min(vals), max(vals)) if vals else None
            if vals:
                ranges.append(f"  {s}: median {summ[s]:.1f} min, range {min(vals):.1f}-{max(vals):.1f}")
        rows.append(summ)
    md = print_table(f"make demo end to end ({'fresh SynthCity each run' if a.fresh_data else 'cached SynthCity'}"
                     f", {a.repeats} run(s){', --method ' + a.method if a.method else ''})", rows, cols)
    print("\n".join(ranges))
    save_table(a.out, "demo", {"env": environment(torch.get_num_threads(), torch.device("cpu")), "rows": rows}, md)
    return rows
