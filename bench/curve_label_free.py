"""Label-free scores along the self-training learning curve (docs/self_training.md). Reads no target label.

  python bench/curve_label_free.py --runs runs/v2 [--seeds 0 1 2]

For every budget of the curve (300, 600, 1,200, 2,400 iterations) and every seed whose run has finished, scores the
final weights of source-only and of the self-training student with ``tools/evaluate.py CKPT --label-free`` (one
thread; ``RUN/label_free.json``, reused when present, as ``bench/rcs_rule.py`` does): D, the total-variation
distance between the class histogram of the model's predictions on the 2,000 unlabelled target-train images and
the histogram of all source labels, and the mean normalised prediction entropy on those images. It answers whether
a user without target labels can see where self-training starts confirming its own mistakes. It never opens
``final_metrics.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from rcs_rule import label_free  # same scorer and cache as the rare-class sampling rule

BUDGETS = (300, 600, 1200, 2400)
ROWS = (("source_only", "source-only"), ("self_training", "self-training student"))


def run_dir(runs: Path, row: str, budget: int, seed: int) -> Path:
    """The protocol's 600-iteration runs are the table's; the other budgets are the curve{N}_ rows."""
    return runs / (f"{row}_s{seed}" if budget == 600 else f"curve{budget}_{row}_s{seed}")


def fmt(values: list) -> str:
    per_seed = " / ".join(f"{v:.3f}" for v in values)
    return per_seed + (f" (mean {statistics.mean(values):.3f})" if len(values) > 1 else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="runs/v2")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    runs = Path(args.runs)
    print("| iterations | seeds | " + " | ".join(f"{label} D | {label} entropy" for _, label in ROWS) + " |")
    print("|---|---|" + "---|---|" * len(ROWS))
    for budget in BUDGETS:
        seeds = [s for s in args.seeds
                 if all((run_dir(runs, row, budget, s) / "checkpoints" / "last.pth").is_file() for row, _ in ROWS)]
        if not seeds:
            continue
        cells = []
        for row, _ in ROWS:
            scores = [label_free(run_dir(runs, row, budget, s)) for s in seeds]
            cells += [fmt([x["total_variation"] for x in scores]), fmt([x["mean_entropy"] for x in scores])]
        print(f"| {budget:,} | {' / '.join(map(str, seeds))} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
