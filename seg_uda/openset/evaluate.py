"""Open-set evaluation of (an ensemble of) models on a K+1-class labelled dataset: confusion over known classes
+ unknown, BUS's Common / Private / H, and AUROC / AP / FPR95 of the unknown score (void pixels ignored)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from .metrics import BinnedScoreMetrics, openset_from_confusion
from .posthoc import openset_prediction, unknown_score

__all__ = ["evaluate_openset", "default_score", "format_openset"]


def default_score(num_channels: int, num_known: int) -> str:
    """'head' for a (K+1)-channel model, else 'msp'."""
    return "head" if num_channels == num_known + 1 else "msp"


@torch.no_grad()
def evaluate_openset(
    models: Sequence[nn.Module], dataset: Any, num_known: int, score: Optional[str] = None,
    threshold: Optional[float] = None, class_names: Optional[Sequence[str]] = None,
    weights: Optional[Sequence[float]] = None, fuse: str = "prob", options: Any = None, amp: Optional[str] = None,
    max_images: Optional[int] = None, num_workers: int = 0, num_bins: int = 100_000,
) -> Dict[str, Any]:
    """Metrics dict: the usual ``miou``/``iou``/... over K+1 classes plus ``common_miou``, ``private_iou``,
    ``h_score``, ``auroc``, ``ap``, ``fpr95``, ``score``, ``threshold``. Labels: 0..K-1 known, K unknown, 255 void.

    Prediction: argmax over all channels, or, with ``score``+``threshold``, known argmax with unknown where
    score > threshold. The threshold-free metrics use ``score`` (default: 'head' for K+1 channels, else 'msp').
    """
    from ..engine import dist
    from ..engine.sampling import shard_indices
    from ..evaluation import ConfusionMatrix
    from ..evaluation.runner import predict_sample_probs

    if not models:
        raise ValueError("evaluate_openset needs at least one model")
    if len(dataset) == 0:
        raise ValueError("evaluation dataset is empty")
    device = next(models[0].parameters()).device
    k = int(num_known)
    cm = ConfusionMatrix(k + 1, device=device)
    scores = BinnedScoreMetrics(num_bins, device=device)
    idx = shard_indices(len(dataset), dist.get_rank(), dist.get_world_size(), max_images)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=1, num_workers=num_workers)
    used_score = score
    for batch in loader:
        if "label" not in batch:
            raise ValueError("evaluation dataset has no labels (with_labels=False?)")
        label = batch["label"].to(device)
        ids = label[label != 255]
        if ids.numel() and int(ids.max()) > k:
            raise ValueError(f"open-set labels must be 0..{k} or 255, got {int(ids.max())} (remap with OpenSetDataset)")
        probs = predict_sample_probs(models, batch["image"], tuple(label.shape[-2:]), weights, fuse, options, amp)
        if probs.shape[1] not in (k, k + 1):
            raise ValueError(f"models predict {probs.shape[1]} classes; open-set evaluation expects K={k} or K+1")
        used_score = used_score or default_score(probs.shape[1], k)
        pred = openset_prediction(probs, k, score if threshold is not None else None, threshold)
        cm.update(pred, label)
        s = unknown_score(probs, used_score, k)
        scores.update(s, label == k, label != 255)
    cm.reduce_from_all_processes()
    scores.reduce_from_all_processes()
    seg = cm.compute(class_names=class_names)
    out = seg.to_dict()
    out.update({f"{key}": v for key, v in openset_from_confusion(seg.confusion).to_dict().items() if key != "known_iou"})
    out.update(scores.compute())
    out.update({"score": used_score, "threshold": threshold, "num_known": k})
    return {key: (None if isinstance(v, float) and v != v else v) for key, v in out.items()}


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
