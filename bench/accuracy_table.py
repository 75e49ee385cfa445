"""Accuracy table from finished runs: mIoU mean ± std over seeds, per-class IoU, share of the gap closed.

Each ``--run LABEL=DIR[,DIR...]`` names the runs (one per seed) of one row; their ``final_metrics.json`` (the
final checkpoint, as the trainer writes it, or ``tools/evaluate.py --out-json`` for an ensemble) are read. The gap
closed is (m - source-only) / (oracle - source-only) with the rows labelled ``source-only`` and ``oracle``.
"paired" is the mean ± std over seeds of (run - source-only run of the same seed): seeds move every method by
several points, and pairing removes the part they share (the seed comes from the run's saved ``config.yaml``, or
for an ensemble from its members' runs).

    python bench/accuracy_table.py --run source-only=runs/b600/source_only --run oracle=runs/b600/oracle \
        --run AdvEnt=runs/b600/advent [--markdown out.md]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

ABBREV = {"sidewalk": "sidew.", "building": "build.", "traffic light": "light", "traffic sign": "sign",
          "vegetation": "veg.", "motorcycle": "mbike", "bicycle": "bike"}


def _run_seed(run_dir: Path) -> Optional[int]:
    cfg = run_dir / "config.yaml"
    return int(yaml.safe_load(cfg.read_text())["seed"]) if cfg.is_file() else None


def run_seed(run_dir: Path, metrics: Dict[str, object]) -> Optional[int]:
    """The seed of a run (its saved config), or of an ensemble whose members all share one; else None."""
    seed = _run_seed(run_dir)
    if seed is None and metrics.get("checkpoints"):
        seeds = {_run_seed(Path(c).resolve().parent.parent) for c in metrics["checkpoints"]}  # type: ignore[union-attr]
        seed = seeds.pop() if len(seeds) == 1 else None
    return seed


def load_row(dirs: Sequence[str]) -> Dict[str, object]:
    """Mean ± std mIoU and mean per-class IoU (percent) over the seeds in ``dirs``, and mIoU per seed."""
    mious: List[float] = []
    by_seed: Dict[int, float] = {}
    per_class: Dict[str, List[float]] = {}
    for d in dirs:
        path = Path(d) / "final_metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is the run in {d!r} finished?")
        m = json.loads(path.read_text())
        mious.append(100 * float(m["miou"]))
        seed = run_seed(Path(d), m)
        if seed is not None:
            by_seed[seed] = mious[-1]
        for name, v in m["iou"].items():
            per_class.setdefault(name, []).append(100 * float(v) if v is not None else float("nan"))
    return {"n": len(mious), "mean": statistics.fmean(mious),
            "std": statistics.stdev(mious) if len(mious) > 1 else None,
            "iou": {k: statistics.fmean(v) for k, v in per_class.items()}, "runs": list(dirs), "by_seed": by_seed}


def paired_delta(row: Dict[str, object], base: Dict[str, object]) -> Optional[str]:
    """Mean ± std over the shared seeds of (row - base) mIoU, with the number of pairs; None without pairs."""
    a, b = row["by_seed"], base["by_seed"]
    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))]  # type: ignore[index, operator]
    if not diffs:
        return None
    std = f" ± {statistics.stdev(diffs):.1f}" if len(diffs) > 1 else ""
    return f"{statistics.fmean(diffs):+.1f}{std} ({len(diffs)})"


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, metavar="LABEL=DIR[,DIR...]")
    p.add_argument("--markdown", help="also write the Markdown table here")
    a = p.parse_args(argv)
    rows: Dict[str, Dict[str, object]] = {}
    for spec in a.run:
        label, sep, dirs = spec.partition("=")
        if not sep or not dirs:
            p.error(f"--run {spec!r}: expected LABEL=DIR[,DIR...]")
        rows[label] = load_row(dirs.split(","))
    src, orc = rows.get("source-only"), rows.get("oracle")
    names = list(next(iter(rows.values()))["iou"])  # type: ignore[arg-type]
    head = ["run", "seeds"] + [ABBREV.get(n, n) for n in names] + ["mIoU", "gap closed", "paired Δ vs source-only"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in rows.items():
        std = f" ± {r['std']:.1f}" if r["std"] is not None else ""
        gap = "-"
        if src and orc and label not in ("source-only", "oracle") and orc["mean"] != src["mean"]:
            gap = f"{100 * (r['mean'] - src['mean']) / (orc['mean'] - src['mean']):.0f}%"  # type: ignore[operator]
        paired = paired_delta(r, src) if src and label != "source-only" else None
        cells = [label, str(r["n"])] + [f"{r['iou'][n]:.1f}" for n in names] + [f"**{r['mean']:.1f}{std}**", gap,  # type: ignore[index]
                                                                                paired or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if a.markdown:
        Path(a.markdown).write_text(table)


if __name__ == "__main__":
    main()
