"""Label-free scoring of a model on the unlabelled target: the class histogram of its predictions against the
source label histogram (total variation), and its mean prediction entropy.

Choices that must not use target labels (the rare-class sampling rule of docs/self_training.md) read these
instead of target-val mIoU. They run through the one evaluation loop (:func:`run_evaluation`) on a target split
built without labels, and are summed over ranks like the confusion matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.distributed as tdist

from ..data.rare_class import source_label_histogram
from ..methods.diagnostics import total_variation
from .inference import class_argmax


class PredictionStatsAccumulator:
    """Per-class pixel counts of the argmax and the summed entropy (normalised by log C, C the model's channels) of
    fused probabilities. ``open_set``: one more bin, *unknown* (id K = ``num_classes``), filled by the argmax of a
    (K+1)-channel model and left empty by a K-channel one, so that both are scored on the same K+1 bins."""

    def __init__(self, num_classes: int, device: Any = "cpu", open_set: bool = False) -> None:
        if num_classes < 2:
            raise ValueError(f"PredictionStatsAccumulator needs >= 2 classes, got {num_classes}")
        self.num_known = int(num_classes)
        self.open_set = bool(open_set)
        self.num_classes = self.num_known + int(self.open_set)  # histogram bins
        self.unknown_head = False  # whether the model has the (K+1)-th channel (set by update)
        # [0:C] argmax counts, [C] summed normalised entropy, [C+1] pixels, [C+2] images: one buffer, one all_reduce
        self.sums = torch.zeros(self.num_classes + 3, dtype=torch.float64, device=device)

    def update(self, batch: Dict[str, Any], probs: torch.Tensor) -> None:
        channels = probs.shape[1]
        if channels != self.num_known and not (self.open_set and channels == self.num_known + 1):
            expected = f"K={self.num_known} or K+1" if self.open_set else str(self.num_known)
            raise ValueError(f"models predict {channels} classes, label-free scoring expects {expected}")
        self.unknown_head = channels == self.num_known + 1
        pred = class_argmax(probs)
        self.sums[: self.num_classes] += torch.bincount(pred.reshape(-1), minlength=self.num_classes).double()
        p = probs.double()
        ent = -(p * torch.log(p.clamp_min(1e-30))).sum(1) / math.log(channels)
        self.sums[self.num_classes] += ent.sum()
        self.sums[self.num_classes + 1] += ent.numel()
        self.sums[self.num_classes + 2] += probs.shape[0]

    def reduce(self) -> None:
        if tdist.is_available() and tdist.is_initialized():
            tdist.all_reduce(self.sums)

    def histogram(self) -> List[float]:
        counts = self.sums[: self.num_classes]
        total = float(counts.sum())
        return (counts / total).tolist() if total > 0 else [0.0] * self.num_classes

    def num_images(self) -> int:
        return int(self.sums[self.num_classes + 2])

    def mean_entropy(self) -> float:
        pixels = float(self.sums[self.num_classes + 1])
        return float(self.sums[self.num_classes]) / pixels if pixels else float("nan")


@dataclass
class LabelFreeScore:
    """The target prediction histogram, the source label histogram, their total-variation distance and the
    target's mean normalised prediction entropy."""

    target_prediction_histogram: List[float]
    source_label_histogram: List[float]
    total_variation: float
    mean_entropy: float
    num_images: int
    #: open-set scoring of a model with an unknown channel: the share of target pixels predicted *unknown* (the
    #: last bin; the source has none). None for closed-set scoring and for K-channel models.
    unknown_fraction: Optional[float] = None

    def to_dict(self, class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        names = list(class_names) if class_names else [str(i) for i in range(len(self.source_label_histogram))]
        out = {"total_variation": self.total_variation, "mean_entropy": self.mean_entropy,
               "num_images": self.num_images,
               "target_prediction_histogram": dict(zip(names, self.target_prediction_histogram)),
               "source_label_histogram": dict(zip(names, self.source_label_histogram))}
        if self.unknown_fraction is not None:
            out["unknown_fraction"] = self.unknown_fraction
        return out


def label_free_score(models: Sequence[torch.nn.Module], target: Any, source_histogram: Sequence[float],
                     max_images: Optional[int] = None, num_workers: int = 0, open_set: bool = False,
                     **eval_kwargs: Any) -> LabelFreeScore:
    """Score (an ensemble of) ``models`` on the unlabelled ``target`` dataset (items: image, name) against
    ``source_histogram`` (K known classes). ``open_set``: K+1 bins, the source's *unknown* share 0, so a model that
    sends target pixels to *unknown* pays for them in the distance, and their share is reported. ``eval_kwargs`` go
    to :func:`run_evaluation` (weights, fuse, options, amp)."""
    from .runner import model_device, run_evaluation

    acc = PredictionStatsAccumulator(len(source_histogram), device=model_device(models), open_set=open_set)
    run_evaluation(models, target, [acc], max_images=max_images, num_workers=num_workers, require_labels=False,
                   **eval_kwargs)
    hist = acc.histogram()
    source = [float(v) for v in source_histogram] + ([0.0] if open_set else [])
    return LabelFreeScore(hist, source, total_variation(hist, source), acc.mean_entropy(), acc.num_images(),
                          hist[-1] if open_set and acc.unknown_head else None)


def format_label_free(score: LabelFreeScore, class_names: Optional[Sequence[str]] = None) -> str:
    """A per-class table (target prediction %, source label %) and the two summary numbers."""
    names = list(class_names) if class_names else [str(i) for i in range(len(score.source_label_histogram))]
    width = max(len(n) for n in names)
    lines = [f"{'class':>{width}s}  target pred %  source label %"]
    for name, t, s in zip(names, score.target_prediction_histogram, score.source_label_histogram):
        lines.append(f"{name:>{width}s}  {100 * t:13.2f}  {100 * s:14.2f}")
    lines.append(f"total variation (target predictions vs source labels): {score.total_variation:.4f}")
    lines.append(f"mean normalised prediction entropy on the target: {score.mean_entropy:.4f}")
    if score.unknown_fraction is not None:
        lines.append(f"target pixels predicted unknown: {100 * score.unknown_fraction:.2f}%")
    return "\n".join(lines)


__all__ = ["LabelFreeScore", "PredictionStatsAccumulator", "format_label_free", "label_free_score",
           "source_label_histogram"]
