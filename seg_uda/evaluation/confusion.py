"""Confusion-matrix accumulation and the IoU / accuracy scores derived from it.

Scores follow cityscapesscripts' ``evalPixelLevelSemanticLabeling`` exactly: pixels whose ground truth is
ignored are dropped, a prediction that is not one of the K classes (e.g. a "void" id) counts as a false
negative of the ground-truth class, a class with no ground-truth and no predicted pixels has IoU NaN and is
left out of the mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.distributed as dist

ArrayLike = Union[torch.Tensor, np.ndarray]


def _nan_to_none(values: Sequence[float]) -> List[Optional[float]]:
    return [None if math.isnan(v) else float(v) for v in values]


def _score_average(values: Sequence[float]) -> float:
    """Mean over the non-NaN entries, summed in order (cityscapesscripts' ``getScoreAverage``)."""
    valid = 0
    total = 0.0
    for v in values:
        if not math.isnan(v):
            valid += 1
            total += v
    return total / valid if valid else float("nan")


@dataclass
class SegMetrics:
    """Scores computed from one confusion matrix (all fractions in [0, 1]; NaN = class undefined)."""

    iou: np.ndarray  # [K] per-class IoU, NaN where a class has no GT and no predicted pixels
    acc: np.ndarray  # [K] per-class accuracy (recall), NaN where a class has no GT pixels
    miou: float  # mean of the non-NaN IoUs over `class_subset`
    pixel_acc: float  # correctly labelled / all evaluated pixels (all K classes)
    mean_acc: float  # mean of the non-NaN per-class accuracies over `class_subset`
    class_subset: List[int]  # classes averaged into miou / mean_acc
    confusion: np.ndarray  # [K, K+1] int64: rows GT, columns prediction, last column = "no class predicted"
    class_names: Optional[List[str]] = field(default=None)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serialisable dict (NaN -> None); per-class entries keyed by class name when known."""
        names = self.class_names or [str(i) for i in range(len(self.iou))]
        return {
            "miou": None if math.isnan(self.miou) else self.miou,
            "pixel_acc": None if math.isnan(self.pixel_acc) else self.pixel_acc,
            "mean_acc": None if math.isnan(self.mean_acc) else self.mean_acc,
            "class_subset": list(self.class_subset),
            "iou": dict(zip(names, _nan_to_none(self.iou.tolist()))),
            "acc": dict(zip(names, _nan_to_none(self.acc.tolist()))),
            "confusion": self.confusion.tolist(),
        }


class ConfusionMatrix:
    """Accumulates a [K, K+1] int64 confusion matrix (rows: ground truth, columns: prediction).

    Column K counts pixels with a valid ground-truth class whose prediction is not in [0, K)
    (e.g. 255 / a void id): they are false negatives for the ground-truth class, as in cityscapesscripts.
    Ground-truth pixels equal to ``ignore_index`` are skipped; any other ground truth outside [0, K) is an error.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: Union[str, torch.device] = "cpu") -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index={ignore_index} collides with a class id (num_classes={num_classes})")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.device = torch.device(device)
        self.mat = torch.zeros((self.num_classes, self.num_classes + 1), dtype=torch.int64, device=self.device)

    # ------------------------------------------------------------------ accumulation
    @torch.no_grad()
    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add one batch: ``pred`` and ``target`` are integer class maps of the same shape (any layout)."""
        pred_t = torch.as_tensor(pred, device=self.device)
        target_t = torch.as_tensor(target, device=self.device)
        if pred_t.shape != target_t.shape:
            raise ValueError(f"pred shape {tuple(pred_t.shape)} != target shape {tuple(target_t.shape)}")
        if pred_t.is_floating_point() or target_t.is_floating_point():
            raise TypeError(
                f"pred/target must be integer class maps, got {pred_t.dtype}/{target_t.dtype} (argmax logits first)"
            )
        k = self.num_classes
        target_t = target_t.reshape(-1).long()
        pred_t = pred_t.reshape(-1).long()
        valid = target_t != self.ignore_index
        target_t = target_t[valid]
        pred_t = pred_t[valid]
        if target_t.numel() and (int(target_t.min()) < 0 or int(target_t.max()) >= k):
            bad = torch.unique(target_t[(target_t < 0) | (target_t >= k)])[:10].tolist()
            raise ValueError(
                f"target has ids {bad} outside [0, {k}) that are not ignore_index={self.ignore_index}"
            )
        # predictions that are not a class go to the extra column K ("no class predicted")
        pred_t = torch.where((pred_t >= 0) & (pred_t < k), pred_t, torch.full_like(pred_t, k))
        inds = target_t * (k + 1) + pred_t
        self.mat += torch.bincount(inds, minlength=k * (k + 1)).reshape(k, k + 1)

    def add_counts(self, counts: ArrayLike) -> None:
        """Add a precomputed [K, K] or [K, K+1] count matrix (e.g. from a folder evaluation or a shard)."""
        c = torch.as_tensor(counts, device=self.device)
        if c.is_floating_point():
            raise TypeError(f"counts must be integers, got {c.dtype}")
        k = self.num_classes
        if tuple(c.shape) == (k, k):
            c = torch.cat([c, c.new_zeros(k, 1)], dim=1)
        if tuple(c.shape) != (k, k + 1):
            raise ValueError(f"counts shape {tuple(c.shape)} is neither ({k}, {k}) nor ({k}, {k + 1})")
        if bool((c < 0).any()):
            raise ValueError("counts must be non-negative")
        self.mat += c.to(torch.int64)

    def reduce_from_all_processes(self) -> None:
        """Sum the matrix over all ranks (no-op unless torch.distributed is initialised)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        dist.barrier()
        dist.all_reduce(self.mat)

    @property
    def matrix(self) -> torch.Tensor:
        """[K, K] confusion counts (GT rows, predicted columns) without the "no class predicted" column."""
        return self.mat[:, : self.num_classes]

    # ------------------------------------------------------------------ scores
    def compute(
        self, class_subset: Optional[Sequence[int]] = None, class_names: Optional[Sequence[str]] = None
    ) -> SegMetrics:
        """Per-class IoU/accuracy plus their means over ``class_subset`` (default: all classes)."""
        k = self.num_classes
        if class_names is not None and len(class_names) != k:
            raise ValueError(f"got {len(class_names)} class names for {k} classes")
        subset = list(range(k)) if class_subset is None else [int(c) for c in class_subset]
        bad = [c for c in subset if not 0 <= c < k]
        if bad:
            raise ValueError(f"class_subset has ids {bad} outside [0, {k})")
        if len(set(subset)) != len(subset):
            raise ValueError(f"class_subset has duplicates: {subset}")

        full = self.mat.detach().cpu().numpy().astype(np.int64)
        conf = full[:, :k]
        tp = np.diag(conf)
        gt_total = full.sum(axis=1)  # includes predictions that are no class
        pred_total = conf.sum(axis=0)  # only pixels with a valid GT class
        denom = gt_total + pred_total - tp  # tp + fn + fp
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)
            acc = np.where(gt_total > 0, tp / np.maximum(gt_total, 1), np.nan)
        total = int(full.sum())
        pixel_acc = float(tp.sum()) / total if total > 0 else float("nan")
        return SegMetrics(
            iou=iou.astype(np.float64),
            acc=acc.astype(np.float64),
            miou=_score_average([float(iou[c]) for c in sorted(subset)]),
            pixel_acc=pixel_acc,
            mean_acc=_score_average([float(acc[c]) for c in sorted(subset)]),
            class_subset=sorted(subset),
            confusion=full,
            class_names=list(class_names) if class_names is not None else None,
        )


def format_table(result: SegMetrics, class_names: Optional[Sequence[str]] = None, digits: int = 2) -> str:
    """A printable per-class table (IoU and accuracy in %), subset classes marked, means at the bottom."""
    names = list(class_names) if class_names is not None else result.class_names
    k = len(result.iou)
    if names is None:
        names = [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"got {len(names)} class names for {k} classes")
    subset = set(result.class_subset)
    width = max(12, max(len(n) for n in names) + 2)

    def pct(v: float) -> str:
        return f"{'nan':>8}" if math.isnan(v) else f"{100.0 * v:>8.{digits}f}"

    lines = [f"{'class':<{width}}{'IoU':>8}{'Acc':>8}", "-" * (width + 16)]
    for i, name in enumerate(names):
        mark = "" if i in subset else " *"
        lines.append(f"{name:<{width}}{pct(result.iou[i])}{pct(result.acc[i])}{mark}")
    lines.append("-" * (width + 16))
    tag = f"mean ({len(subset)})"
    lines.append(f"{tag:<{width}}{pct(result.miou)}{pct(result.mean_acc)}")
    lines.append(f"{'pixel acc':<{width}}{pct(result.pixel_acc)}")
    if len(subset) != k:
        lines.append("* not in the averaged class subset")
    return "\n".join(lines)
