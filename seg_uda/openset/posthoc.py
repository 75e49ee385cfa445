"""Post-hoc unknown scores on softmax outputs (MSP, normalized entropy, or an open-set head's unknown channel),
open-set predictions, and thresholds calibrated on labelled *source* pixels (no target labels).

Score conventions (higher = more unknown, all in [0, 1]): ``msp`` -> 1 - max known-class probability,
``entropy`` -> entropy of the known-class distribution / log K, ``head`` -> p(unknown) of a (K+1)-way head.
Thresholds are on the same scale: a pixel is unknown when score > threshold.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import torch
import torch.distributed as tdist

from ..evaluation.inference import class_argmax
from ..evaluation.runner import MissingLabelsError, model_device, run_evaluation

__all__ = ["UNKNOWN_SCORES", "unknown_score", "openset_prediction", "calibrate_threshold", "quantile_from_hist",
           "ScoreHistogram", "to_score_threshold"]

UNKNOWN_SCORES = ("msp", "entropy", "head")


def _known_probs(probs: torch.Tensor, num_known: int) -> torch.Tensor:
    """Softmax probabilities of the K known classes, renormalised when a (K+1)-th unknown channel exists."""
    if probs.dim() != 4:
        raise ValueError(f"probabilities must be [N, C, H, W], got shape {tuple(probs.shape)}")
    c = probs.shape[1]
    if c not in (num_known, num_known + 1):
        raise ValueError(f"probabilities have {c} channels; expected K={num_known} or K+1={num_known + 1}")
    if c == num_known:
        return probs
    known = probs[:, :num_known]
    return known / known.sum(1, keepdim=True).clamp_min(1e-12)


def unknown_score(probs: torch.Tensor, score: str, num_known: int) -> torch.Tensor:
    """Per-pixel unknown score [N, H, W] in [0, 1] from softmax ``probs`` [N, K or K+1, H, W]."""
    probs = probs.float()
    if score == "head":
        if probs.shape[1] != num_known + 1:
            raise ValueError(f"score 'head' needs a (K+1)-channel model (K={num_known}), got {probs.shape[1]} channels")
        return probs[:, num_known]
    known = _known_probs(probs, num_known)
    if score == "msp":
        return 1.0 - known.max(1).values
    if score == "entropy":
        if num_known < 2:
            return torch.zeros_like(known[:, 0])
        ent = -(known * torch.log(known.clamp_min(1e-30))).sum(1)
        return (ent / math.log(num_known)).clamp(0.0, 1.0)
    raise ValueError(f"unknown score must be one of {', '.join(UNKNOWN_SCORES)}, got {score!r}")


def openset_prediction(probs: torch.Tensor, num_known: int, score: Optional[str] = None,
                       threshold: Optional[float] = None) -> torch.Tensor:
    """Predicted ids [N, H, W] in 0..K (K = unknown).

    Without ``score``: argmax over all channels (a (K+1)-way head predicts unknown itself; a K-way model
    never does). With ``score`` and ``threshold``: argmax over the known classes, and unknown where
    score > threshold.
    """
    if (score is None) != (threshold is None):
        raise ValueError("unknown score and threshold go together")
    if score is None:
        return class_argmax(probs)
    pred = class_argmax(_known_probs(probs, num_known))
    unknown = unknown_score(probs, score, num_known) > float(threshold)
    return torch.where(unknown, torch.full_like(pred, num_known), pred)


def quantile_from_hist(hist: torch.Tensor, fraction: float) -> float:
    """Threshold t on [0, 1] (bin edges of ``hist``) such that about ``fraction`` of the counts lie above t."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"flagged fraction must be in (0, 1), got {fraction}")
    total = float(hist.sum())
    if total == 0:
        raise ValueError("no labelled pixels to calibrate the threshold on")
    above = torch.flip(torch.cumsum(torch.flip(hist.double(), [0]), 0), [0])  # above[i] = count in bins >= i
    n = hist.numel()
    ok = (above <= fraction * total).nonzero()
    i = int(ok[0]) if ok.numel() else n  # first bin edge with at most `fraction` of the pixels at or above it
    occupied = (hist[i:] > 0).nonzero()
    i = i + int(occupied[0]) if occupied.numel() else n  # just below the lowest flagged score, not in a gap
    return i / n


class ScoreHistogram:
    """Accumulator of :func:`~seg_uda.evaluation.runner.run_evaluation`: the histogram of ``score`` over the
    labelled (non-ignored) pixels, for :func:`quantile_from_hist`."""

    def __init__(self, score: str, num_known: int, num_bins: int = 100_000, device: Any = "cpu") -> None:
        self.score, self.num_known, self.num_bins = score, int(num_known), int(num_bins)
        self.hist = torch.zeros(self.num_bins, dtype=torch.float64, device=device)

    def update(self, batch: Dict[str, Any], probs: torch.Tensor) -> None:
        s = unknown_score(probs, self.score, self.num_known)
        valid = (batch["label"] != 255).to(s.device)
        b = (s[valid].clamp(0, 1) * self.num_bins).long().clamp_max(self.num_bins - 1)
        self.hist += torch.bincount(b, minlength=self.num_bins).double()

    def reduce(self) -> None:
        if tdist.is_available() and tdist.is_initialized():
            tdist.all_reduce(self.hist)


@torch.no_grad()
def calibrate_threshold(models: Sequence[torch.nn.Module], dataset: Any, score: str, num_known: int,
                        fraction: float = 0.05, max_images: Optional[int] = None, num_bins: int = 100_000,
                        options: Any = None, amp: Optional[str] = None) -> float:
    """The score threshold that flags ``fraction`` of the labelled (non-ignored) pixels of ``dataset`` (held-out
    labelled *source* frames) as unknown: no target label is used. Sharded over ranks, histograms summed."""
    if len(dataset) == 0:
        raise ValueError("threshold calibration needs labelled source frames (the calibration set is empty)")
    acc = ScoreHistogram(score, num_known, num_bins, device=model_device(models))
    try:
        run_evaluation(models, dataset, [acc], options=options, amp=amp, max_images=max_images)
    except MissingLabelsError:
        msg = "threshold calibration needs labelled source frames (the dataset has no 'label')"
        raise ValueError(msg) from None
    return quantile_from_hist(acc.hist, fraction)


def to_score_threshold(score: str, threshold: float) -> float:
    """CLI convention -> score scale: for 'msp' the user gives T on the max probability (unknown if MSP < T),
    i.e. score 1 - MSP > 1 - T; 'entropy' and 'head' thresholds are already on the score scale."""
    return 1.0 - float(threshold) if score == "msp" else float(threshold)
