"""Open-set metrics: BUS's Common mIoU / Private IoU / H-score from a (K+1)-class confusion matrix, and the
threshold-free AUROC / AP / FPR@95%TPR of a per-pixel unknown score (Fishyscapes, SegmentMeIfYouCan).

Score metrics treat *unknown* (private) pixels as positives; void pixels (255) are left out by the caller.
``score_metrics`` is exact (ties handled as one threshold); ``BinnedScoreMetrics`` accumulates histograms over
[0, 1] for whole datasets and equals the exact result whenever distinct scores fall in distinct bins.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

__all__ = ["OpenSetMetrics", "openset_from_confusion", "h_score", "score_metrics", "score_metrics_from_counts",
           "BinnedScoreMetrics"]


def h_score(common: float, private: float) -> float:
    """Harmonic mean 2cp/(c+p) (0 when both are 0; NaN if either is NaN)."""
    if math.isnan(common) or math.isnan(private):
        return float("nan")
    return 0.0 if common + private == 0 else 2.0 * common * private / (common + private)


@dataclass
class OpenSetMetrics:
    """BUS metrics (fractions in [0, 1]): common = mIoU of the K known classes, private = IoU of unknown (id K)."""

    common_miou: float
    private_iou: float
    h_score: float
    known_iou: Sequence[float]

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["known_iou"] = [float(v) for v in self.known_iou]
        return d


def _ious(conf: np.ndarray) -> np.ndarray:
    conf = conf.astype(np.float64)
    n = conf.shape[0]
    tp = np.diag(conf[:, :n])
    union = conf[:, :n].sum(0) + conf.sum(1) - tp  # an extra last column counts as missed (no class predicted)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def openset_from_confusion(confusion: Any) -> OpenSetMetrics:
    """Metrics from a (K+1)x(K+1) confusion matrix (rows = ground truth, cols = prediction, id K = unknown);
    a (K+1)x(K+2) one (``ConfusionMatrix``'s layout, last column = no class predicted) is accepted too.

    Common mIoU averages the known classes present in the ground truth or predictions (NaN IoUs skipped).
    """
    conf = confusion.detach().cpu().numpy() if isinstance(confusion, torch.Tensor) else np.asarray(confusion)
    if conf.ndim != 2 or conf.shape[1] not in (conf.shape[0], conf.shape[0] + 1) or conf.shape[0] < 2:
        raise ValueError(f"open-set confusion must be (K+1)x(K+1) (or x(K+2), as ConfusionMatrix) with K >= 1, "
                         f"got shape {conf.shape}")
    iou = _ious(conf)
    known = iou[:-1]
    valid = known[~np.isnan(known)]
    common = float(valid.mean()) if valid.size else float("nan")
    private = float(iou[-1])
    return OpenSetMetrics(common, private, h_score(common, private), [float(v) for v in known])


def score_metrics_from_counts(pos: np.ndarray, neg: np.ndarray, tpr_level: float = 0.95) -> Dict[str, float]:
    """AUROC, AP and FPR at ``tpr_level`` TPR from positive/negative counts per threshold, ordered by
    *decreasing* score (index 0 = most unknown). Each entry is one threshold: tied pixels move together.

    AUROC: trapezoidal area under the ROC; AP: sum over thresholds of (R_n - R_{n-1}) * P_n (step rule,
    as scikit-learn's average_precision_score); FPR95: FPR at the first threshold whose TPR >= ``tpr_level``.
    """
    pos = np.asarray(pos, dtype=np.float64).ravel()
    neg = np.asarray(neg, dtype=np.float64).ravel()
    if pos.shape != neg.shape:
        raise ValueError(f"pos and neg counts differ in length: {pos.shape} vs {neg.shape}")
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        nan = float("nan")
        return {"auroc": nan, "ap": nan, "fpr95": nan, "num_pos": float(n_pos), "num_neg": float(n_neg)}
    keep = (pos + neg) > 0
    tp = np.cumsum(pos[keep])
    fp = np.cumsum(neg[keep])
    tpr = np.concatenate([[0.0], tp / n_pos])
    fpr = np.concatenate([[0.0], fp / n_neg])
    auroc = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
    precision = tp / (tp + fp)
    ap = float(np.sum((tpr[1:] - tpr[:-1]) * precision))
    idx = int(np.searchsorted(tpr[1:], tpr_level - 1e-12, side="left"))
    fpr95 = float(fpr[1:][min(idx, len(tp) - 1)])
    return {"auroc": auroc, "ap": ap, "fpr95": fpr95, "num_pos": float(n_pos), "num_neg": float(n_neg)}


def score_metrics(scores: Any, is_unknown: Any, valid: Any = None, tpr_level: float = 0.95) -> Dict[str, float]:
    """Exact AUROC / AP / FPR95 of per-pixel ``scores`` (higher = more unknown) against boolean ``is_unknown``;
    ``valid`` (bool) selects the pixels to use (e.g. label != 255)."""
    s = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, dtype=np.float64).ravel()
    y = np.asarray(is_unknown.detach().cpu() if isinstance(is_unknown, torch.Tensor)
                   else is_unknown).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and is_unknown differ in size: {s.shape} vs {y.shape}")
    if valid is not None:
        v = np.asarray(valid.detach().cpu() if isinstance(valid, torch.Tensor) else valid).ravel().astype(bool)
        s, y = s[v], y[v]
    if np.isnan(s).any():
        raise ValueError("score_metrics: scores contain NaN")
    uniq, inverse = np.unique(-s, return_inverse=True)  # ascending -s = descending score
    pos = np.bincount(inverse, weights=y.astype(np.float64), minlength=len(uniq))
    neg = np.bincount(inverse, weights=(~y).astype(np.float64), minlength=len(uniq))
    return score_metrics_from_counts(pos, neg, tpr_level)


class BinnedScoreMetrics:
    """Streaming AUROC / AP / FPR95 for scores in [0, 1]: histograms of positives and negatives over
    ``num_bins`` equal bins (memory O(bins), summable over ranks). Scores outside [0, 1] are clipped."""

    def __init__(self, num_bins: int = 100_000, device: Any = "cpu") -> None:
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins = int(num_bins)
        self.pos = torch.zeros(self.num_bins, dtype=torch.float64, device=device)
        self.neg = torch.zeros(self.num_bins, dtype=torch.float64, device=device)

    def update(self, scores: torch.Tensor, is_unknown: torch.Tensor, valid: Optional[torch.Tensor] = None) -> None:
        """Add pixels; ``valid`` (bool, same shape) drops void pixels."""
        s = scores.reshape(-1).float()
        y = is_unknown.reshape(-1).to(self.pos.device).bool()
        if s.numel() != y.numel():
            raise ValueError(f"scores and is_unknown differ in size: {s.numel()} vs {y.numel()}")
        s = s.to(self.pos.device)
        if valid is not None:
            v = valid.reshape(-1).to(self.pos.device).bool()
            s, y = s[v], y[v]
        b = (s.clamp(0.0, 1.0) * self.num_bins).long().clamp_max(self.num_bins - 1)
        self.pos += torch.bincount(b[y], minlength=self.num_bins).double()
        self.neg += torch.bincount(b[~y], minlength=self.num_bins).double()

    def reduce_from_all_processes(self) -> None:
        """Sum the histograms over ranks (no-op without torch.distributed)."""
        import torch.distributed as tdist

        if tdist.is_available() and tdist.is_initialized():
            tdist.all_reduce(self.pos)
            tdist.all_reduce(self.neg)

    def compute(self, tpr_level: float = 0.95) -> Dict[str, float]:
        # highest bin first = most unknown
        return score_metrics_from_counts(self.pos.flip(0).cpu().numpy(), self.neg.flip(0).cpu().numpy(), tpr_level)
