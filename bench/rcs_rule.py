"""Apply the label-free rare-class sampling rule of docs/self_training.md to finished runs. Reads no target label.

  python bench/rcs_rule.py --runs runs/v2 [--seeds 3 4 5]

For each seed, scores the final student of ``self_training_rcs_s<seed>`` (with DAFormer's rare-class sampling)
and ``self_training_s<seed>`` (without it: the config as shipped after this rule; when the rule was applied, these
folders were named ``self_training_s<seed>`` and ``self_training_no_rcs_s<seed>``) with
``tools/evaluate.py RUN/checkpoints/last.pth --label-free`` (one thread; written to ``RUN/label_free.json`` and
reused when present), prints the total-variation distance D of each, and the decision: drop rare-class sampling
only if D without it is lower on at least 2 of 3 seeds and on the mean.
It never opens ``final_metrics.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = (("self_training_rcs", "with RCS (DAFormer)"), ("self_training", "without RCS"))


def label_free(run: Path) -> dict:
    out = run / "label_free.json"
    if not out.is_file():
        ckpt = run / "checkpoints" / "last.pth"
        if not ckpt.is_file():
            raise FileNotFoundError(f"no final checkpoint {ckpt}: is the run finished?")
        cmd = [sys.executable, str(REPO / "tools" / "evaluate.py"), str(ckpt), "--label-free", "--out-json", str(out)]
        subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True,
                       stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def rule_counts(d_with: list, d_without: list) -> tuple:
    """(seeds on which D without rare-class sampling is lower, whether its mean over the seeds is lower)."""
    if len(d_with) != len(d_without) or not d_with:
        raise ValueError(f"need one D per seed for both configs, got {len(d_with)} and {len(d_without)}")
    return sum(b < a for a, b in zip(d_with, d_without)), statistics.mean(d_without) < statistics.mean(d_with)


def drop_rcs(d_with: list, d_without: list) -> bool:
    """The rule: drop rare-class sampling iff D without it is lower on at least 2 of 3 seeds (two thirds of them)
    and lower on the mean over the seeds."""
    wins, lower_mean = rule_counts(d_with, d_without)
    return wins * 3 >= 2 * len(d_with) and lower_mean


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="runs/v2")
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    args = p.parse_args()
    runs = Path(args.runs)
    scores = {key: [label_free(runs / f"{key}_s{s}") for s in args.seeds] for key, _ in CONFIGS}
    d = {key: [x["total_variation"] for x in v] for key, v in scores.items()}
    ent = {key: [x["mean_entropy"] for x in v] for key, v in scores.items()}
    print("| config | D per seed (" + " / ".join(map(str, args.seeds)) + ") | mean D | target entropy (mean) |")
    print("|---|---|---|---|")
    for key, label in CONFIGS:
        print(f"| {label} | {' / '.join(f'{v:.4f}' for v in d[key])} | {statistics.mean(d[key]):.4f} | "
              f"{statistics.mean(ent[key]):.4f} |")
    wins, lower_mean = rule_counts(d["self_training_rcs"], d["self_training"])
    drop = drop_rcs(d["self_training_rcs"], d["self_training"])
    print(f"D lower without RCS on {wins} of {len(args.seeds)} seeds; mean lower without RCS: {lower_mean}")
    print("decision: " + ("drop rare-class sampling" if drop else "keep rare-class sampling (DAFormer's setting)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
