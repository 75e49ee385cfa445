"""Open-set evaluation of (an ensemble of) models on a K+1-class labelled dataset, as an accumulator of the one
evaluation loop: confusion over known classes + unknown, BUS's Common / Private / H, and AUROC / AP / FPR95 of
the unknown score (void pixels ignored)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from ..evaluation.confusion import ConfusionMatrix
from ..evaluation.runner import model_device, run_evaluation
from .metrics import BinnedScoreMetrics, openset_from_confusion
from .posthoc import openset_prediction, unknown_score

__all__ = ["OpenSetAccumulator", "evaluate_openset", "default_score", "format_openset"]


def default_score(num_channels: int, num_known: int) -> str:
    """'head' for a (K+1)-channel model, else 'msp'."""
    return "head" if num_channels == num_known + 1 else "msp"


class OpenSetAccumulator:
    """Open-set scoring inside :func:`~seg_uda.evaluation.runner.run_evaluation`: a (K+1)-class confusion and
    binned unknown-score histograms. Labels: 0..K-1 known, K unknown, 255 void.

    Prediction: argmax over all channels, or, with ``score``+``threshold``, known argmax with unknown where
    score > threshold. The threshold-free metrics use ``score`` (default: 'head' for K+1 channels, else 'msp').
    """

    def __init__(self, num_known: int, score: Optional[str] = None, threshold: Optional[float] = None,
                 class_names: Optional[Sequence[str]] = None, num_bins: int = 100_000, device: Any = "cpu") -> None:
        self.k, self.score, self.threshold, self.class_names = int(num_known), score, threshold, class_names
        self.confusion = ConfusionMatrix(self.k + 1, device=device)
        self.scores = BinnedScoreMetrics(num_bins, device=device)
        self.used_score = score

    def update(self, batch: Dict[str, Any], probs: torch.Tensor) -> None:
        k = self.k
        label = batch["label"].to(probs.device)
        ids = label[label != 255]
        if ids.numel() and int(ids.max()) > k:
            raise ValueError(f"open-set labels must be 0..{k} or 255, got {int(ids.max())} (remap with OpenSetDataset)")
        if probs.shape[1] not in (k, k + 1):
            raise ValueError(f"models predict {probs.shape[1]} classes; open-set evaluation expects K={k} or K+1")
        self.used_score = self.used_score or default_score(probs.shape[1], k)
        pred = openset_prediction(probs, k, self.score if self.threshold is not None else None, self.threshold)
        self.confusion.update(pred, label)
        self.scores.update(unknown_score(probs, self.used_score, k), label == k, label != 255)

    def reduce(self) -> None:
        self.confusion.reduce_from_all_processes()
        self.scores.reduce_from_all_processes()

    def result(self) -> Dict[str, Any]:
        """The usual ``miou``/``iou``/... over K+1 classes plus ``common_miou``, ``private_iou``, ``h_score``,
        ``auroc``, ``ap``, ``fpr95``, ``score``, ``threshold``, ``num_known`` (NaN -> None)."""
        seg = self.confusion.compute(class_names=self.class_names)
        out = seg.to_dict()
        out.update({key: v for key, v in openset_from_confusion(seg.confusion).to_dict().items() if key != "known_iou"})
        out.update(self.scores.compute())
        out.update({"score": self.used_score, "threshold": self.threshold, "num_known": self.k})
        return {key: (None if isinstance(v, float) and v != v else v) for key, v in out.items()}


@torch.no_grad()
def evaluate_openset(
    models: Sequence[nn.Module], dataset: Any, num_known: int, score: Optional[str] = None,
    threshold: Optional[float] = None, class_names: Optional[Sequence[str]] = None,
    weights: Optional[Sequence[float]] = None, fuse: str = "prob", options: Any = None, amp: Optional[str] = None,
    max_images: Optional[int] = None, num_workers: int = 0, num_bins: int = 100_000,
) -> Dict[str, Any]:
    """Open-set metrics dict (:meth:`OpenSetAccumulator.result`) of (an ensemble of) ``models`` on ``dataset``."""
    acc = OpenSetAccumulator(num_known, score, threshold, class_names, num_bins, device=model_device(models))
    run_evaluation(models, dataset, [acc], weights, fuse, options, amp, max_images, num_workers)
    return acc.result()


def format_openset(res: Dict[str, Any]) -> str:
    """One line: Common / Private / H (in %) and AUROC / AP / FPR95 of the unknown score."""
    def pct(v: Any) -> str:
        return "nan" if v is None or v != v else f"{100 * v:.2f}"

    thr = res.get("threshold")
    if thr is None:
        rule = "argmax"
    elif res.get("score") == "msp":
        rule = f"max prob < {1.0 - thr:.4f}"
    else:
        rule = f"{res.get('score')} > {thr:.4f}"
    return (f"open-set [{rule}]  Common mIoU: {pct(res['common_miou'])}  Private IoU: {pct(res['private_iou'])}  "
            f"H-score: {pct(res['h_score'])}  |  AUROC: {pct(res['auroc'])}  AP: {pct(res['ap'])}  "
            f"FPR95: {pct(res['fpr95'])}  (score: {res.get('score')})")
