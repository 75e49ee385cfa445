"""Matplotlib (Agg) charts: grouped per-class IoU bars comparing runs, and a row-normalised confusion matrix."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, Path]


def _save_figure(fig: Any, out_path: PathLike) -> Path:
    """Lay out ``fig`` and write it as a PNG at 100 dpi, creating the folder."""
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt_pct(v: Optional[float]) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100.0 * v:.1f}"


def iou_bar_chart(
    runs: Sequence[Tuple[str, Mapping[str, Any]]],
    out_path: PathLike,
    class_names: Optional[Sequence[str]] = None,
    title: str = "Per-class IoU",
) -> Path:
    """Grouped bars of per-class IoU (%) for each run; ``runs`` = [(label, {"miou", "iou": {class: v}}), ...].

    Classes default to the union of the runs' classes in first-seen order; a missing/None IoU draws no bar.
    The legend shows each run's mIoU.
    """
    if not runs:
        raise ValueError("iou_bar_chart needs at least one run")
    if class_names is None:
        names: List[str] = []
        for _, m in runs:
            names += [c for c in m["iou"] if c not in names]
    else:
        names = list(class_names)
    plt = _pyplot()
    n = len(runs)
    x = np.arange(len(names))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names) + 2.0), 4.5))
    try:
        for i, (label, m) in enumerate(runs):
            vals = [m["iou"].get(c) for c in names]
            heights = np.array([np.nan if v is None else 100.0 * float(v) for v in vals])
            ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(heights, nan=0.0), width,
                   label=f"{label} (mIoU {_fmt_pct(m.get('miou'))})")
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=60, ha="right")
        ax.set_ylabel("IoU (%)")
        ax.set_ylim(0, 100)
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(axis="y", alpha=0.3)
        return _save_figure(fig, out_path)
    finally:
        plt.close(fig)


def confusion_matrix_png(
    confusion: Union[np.ndarray, Sequence[Sequence[int]]],
    class_names: Sequence[str],
    out_path: PathLike,
    title: str = "Confusion matrix (row-normalised)",
) -> Path:
    """Plot a [K, K] or [K, K+1] confusion matrix (rows GT, columns prediction) normalised per GT row.

    A (K+1)-th column ("no class predicted") is shown as an extra 'void' column.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    k = len(class_names)
    if cm.ndim != 2 or cm.shape[0] != k or cm.shape[1] not in (k, k + 1):
        raise ValueError(f"confusion matrix shape {cm.shape} does not fit {k} class names")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    cols = list(class_names) + (["void"] if cm.shape[1] == k + 1 else [])
    plt = _pyplot()
    size = max(5.0, 0.45 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    try:
        im = ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues")
        ax.set_xticks(np.arange(len(cols)))
        ax.set_xticklabels(cols, rotation=90)
        ax.set_yticks(np.arange(k))
        ax.set_yticklabels(class_names)
        ax.set_xlabel("prediction")
        ax.set_ylabel("ground truth")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        return _save_figure(fig, out_path)
    finally:
        plt.close(fig)
