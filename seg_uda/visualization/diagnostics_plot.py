"""Plots of the alignment diagnostics a run logs to metrics.jsonl (``schedule.diagnostics_interval``).

One figure, four panels, every run overlaid: discriminator accuracy per level and domain, mean prediction entropy
per domain, adaptation-over-segmentation gradient-norm ratios (log scale), and the last logged target prediction
class histogram against the source label histogram.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from .charts import _pyplot

PathLike = Union[str, Path]


def read_diagnostics(run_dir: PathLike) -> List[Dict[str, Any]]:
    """The ``diag`` records of a run's metrics.jsonl, by iteration (a resumed run's later records win)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run folder?")
    by_iter: Dict[int, Dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if rec.get("kind") == "diag":
            by_iter[int(rec["iter"])] = rec
    if not by_iter:
        raise ValueError(f"{path} has no diagnostics: train with schedule.diagnostics_interval > 0")
    return [by_iter[k] for k in sorted(by_iter)]


def _series(records: Sequence[Dict[str, Any]], prefix: str) -> Dict[str, Tuple[List[int], List[float]]]:
    keys = sorted({k for r in records for k in r if k.startswith(prefix)})
    return {k[len(prefix):]: ([r["iter"] for r in records if k in r], [float(r[k]) for r in records if k in r])
            for k in keys}


#: one marker per adaptation term in the gradient-ratio panel (colour: the run; line style: backbone or head)
TERM_MARKERS = ("o", "s", "^", "v", "D", "x", "P", "*")


def term_markers(records_per_run: Sequence[Sequence[Dict[str, Any]]]) -> Dict[str, str]:
    """A marker per adaptation term logged by any run (``gradratio_<term>_<backbone|head>``), in name order, so that
    two terms of one run (self-training's mix and mic) stay apart in the panel."""
    terms = sorted({name.rsplit("_", 1)[0] for recs in records_per_run for name in _series(recs, "gradratio_")})
    return {t: TERM_MARKERS[i % len(TERM_MARKERS)] for i, t in enumerate(terms)}


def diagnostics_figure(runs: Sequence[Tuple[str, PathLike]], class_names: Sequence[str] = ()) -> Any:
    """The four-panel diagnostics figure of ``runs`` = [(label, run_dir)], as a matplotlib figure."""
    plt = _pyplot()
    data = [(label, read_diagnostics(d)) for label, d in runs]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    (ax_d, ax_e), (ax_g, ax_h) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = term_markers([recs for _, recs in data])
    for i, (label, recs) in enumerate(data):
        c = colors[i % len(colors)]
        for name, (x, y) in _series(recs, "disc_acc_").items():
            ax_d.plot(x, [100 * v for v in y], color=c, ls="-" if name.endswith("tgt") else "--",
                      marker="o" if "aux" in name else None, ms=3, label=f"{label}: {name}")
        for name, (x, y) in _series(recs, "entropy_").items():
            ax_e.plot(x, y, color=c, ls="-" if name == "tgt" else "--", label=f"{label}: {name}")
        for name, (x, y) in _series(recs, "gradratio_").items():
            pos = [(a, b) for a, b in zip(x, y) if b > 0 and np.isfinite(b)]
            if pos:
                ax_g.plot(*zip(*pos), color=c, ls="-" if name.endswith("backbone") else ":",
                          marker=markers[name.rsplit("_", 1)[0]], ms=3, label=f"{label}: {name}")
    ax_d.axhline(50, color="grey", lw=0.8)
    ax_d.set(title="discriminator accuracy (%) per level and domain\n(50% = cannot tell the domains apart)",
             xlabel="iteration", ylim=(0, 100))
    if not ax_d.get_legend_handles_labels()[0]:  # e.g. source-only beside self-training: say so, not empty axes
        ax_d.text(0.5, 0.7, "no discriminator in these runs", transform=ax_d.transAxes, ha="center", fontsize=11)
    ax_e.set(title="mean normalised prediction entropy (solid: target, dashed: source)", xlabel="iteration")
    ax_g.set(title="adaptation / segmentation gradient-norm ratio\n(solid: backbone, dotted: classifier head;"
             " marker: the term)", xlabel="iteration", yscale="log")
    _histograms(ax_h, data, colors, class_names)
    for ax in (ax_d, ax_e, ax_g):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_diagnostics(runs: Sequence[Tuple[str, PathLike]], out_png: PathLike,
                     class_names: Sequence[str] = ()) -> Path:
    """Write the four-panel diagnostics figure of ``runs`` = [(label, run_dir)] to ``out_png``."""
    fig = diagnostics_figure(runs, class_names)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    _pyplot().close(fig)
    return out


def _histograms(ax: Any, data: Sequence[Tuple[str, List[Dict[str, Any]]]], colors: Sequence[str],
                class_names: Sequence[str]) -> None:
    """Source label histogram (first run that has one) and each run's last target prediction histogram."""
    bars: List[Tuple[str, List[float], str]] = []
    for i, (label, recs) in enumerate(data):
        last = recs[-1]
        if "hist_src_label" in last and not any(b[0] == "source labels" for b in bars):
            bars.append(("source labels", last["hist_src_label"], "black"))
        if "hist_tgt_pred" in last:
            bars.append((f"{label}: target predictions (iter {last['iter']})", last["hist_tgt_pred"],
                         colors[i % len(colors)]))
    if not bars:
        ax.set_title("no class histograms logged")
        return
    n = len(bars[0][1])
    bars = [b for b in bars if len(b[1]) == n]  # runs with another number of classes cannot share the axis
    width = 0.8 / len(bars)
    for j, (label, h, c) in enumerate(bars):
        ax.bar(np.arange(n) + (j - (len(bars) - 1) / 2) * width, [100 * v for v in h], width, color=c, label=label)
    names = list(class_names) if len(class_names) == n else [str(k) for k in range(n)]
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set(title="class histogram (% of pixels)", ylabel="%")
    ax.legend(fontsize=7)
