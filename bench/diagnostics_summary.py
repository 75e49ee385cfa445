"""The label-free alignment diagnostics of finished runs, one Markdown row per run. Reads no target label.

  python bench/diagnostics_summary.py runs/v2/advent_cp_s0 runs/v2/advent_cp_ft_s0 [...]

From each run's ``diag`` records (``schedule.diagnostics_interval``; docs/diagnostics.md): the discriminators'
accuracy over the second half of the run (mean of the source and target accuracies, per level), the median ratio of
each adaptation term's gradient norm to the segmentation term's at the backbone over the second half, and, at the
last record, the mean prediction entropy per domain and the total-variation distance of the target predictions'
class histogram from the source label histogram (D). These are the figures the protocol document quotes.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from seg_uda.visualization.diagnostics_plot import read_diagnostics


def summarize_run(records: Sequence[Dict[str, Any]]) -> Dict[str, Optional[float]]:
    """The figures above from one run's diagnostics records (ordered by iteration)."""
    last_iter = records[-1]["iter"]
    half = [r for r in records if r["iter"] > last_iter / 2] or list(records)
    out: Dict[str, Optional[float]] = {}
    for level in ("main", "aux"):
        accs = [(r[f"disc_acc_{level}_src"] + r[f"disc_acc_{level}_tgt"]) / 2 for r in half
                if f"disc_acc_{level}_src" in r and f"disc_acc_{level}_tgt" in r]
        out[f"disc_acc_{level}"] = statistics.fmean(accs) if accs else None
    for term in ("adv", "ent", "cp"):
        ratios = [r[f"gradratio_{term}_backbone"] for r in half if f"gradratio_{term}_backbone" in r]
        out[f"gradratio_{term}"] = statistics.median(ratios) if ratios else None
    last = records[-1]
    out.update(entropy_src=last.get("entropy_src"), entropy_tgt=last.get("entropy_tgt"),
               tv=last.get("hist_tv_tgt_pred_vs_src_label"), iter=last_iter)
    return out


COLUMNS = (("disc_acc_main", "D acc. main (2nd half)"), ("disc_acc_aux", "D acc. aux"),
           ("gradratio_adv", "adv/seg grad (median)"), ("gradratio_ent", "ent/seg grad"),
           ("gradratio_cp", "prior/seg grad"), ("entropy_src", "entropy src (last)"), ("entropy_tgt", "entropy tgt"),
           ("tv", "D: target pred. vs source labels"))


def table(runs: Sequence[Path]) -> str:
    lines = ["| run | last iter | " + " | ".join(h for _, h in COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for run in runs:
        s = summarize_run(read_diagnostics(run))
        cells = ["-" if s[k] is None else f"{s[k]:.3f}" for k, _ in COLUMNS]
        lines.append(f"| {run} | {s['iter']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders (with metrics.jsonl)")
    a = p.parse_args(argv)
    try:
        print(table(a.runs))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
