"""Alignment diagnostics: does adaptation act at all? (docs/diagnostics.md)

Label-free measurements of one training step, logged every ``schedule.diagnostics_interval`` iterations:
discriminator / domain-classifier accuracy per level and domain, mean prediction entropy per domain, the norm of
each adaptation term's gradient relative to the segmentation term's at the backbone (shared features) and at the
head (classifier), and the target prediction's class histogram against the source label histogram.
Pure functions of tensors, plus `step_diagnostics`, which the trainer calls.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

__all__ = ["binary_accuracy", "mean_entropy", "class_histogram", "total_variation", "loss_groups",
           "gradient_norms", "gradient_ratios", "step_diagnostics"]

REFERENCE_GROUP = "seg"  # gradient ratios are relative to the supervised segmentation terms


def binary_accuracy(logits: Tensor, label: float) -> float:
    """Fraction of a domain classifier's outputs (logits, any shape) on the side of 0.5 that `label` (0 or 1) is."""
    if label not in (0.0, 1.0):
        raise ValueError(f"binary_accuracy: label must be 0 or 1, got {label}")
    pred = logits.detach().float() > 0
    return float((pred if label == 1.0 else ~pred).float().mean())


def mean_entropy(logits: Tensor) -> float:
    """Mean per-pixel entropy of softmax(logits) [N,C,H,W], normalised by log C to [0, 1]."""
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"mean_entropy: expected logits [N,C,H,W] with C >= 2, got shape {tuple(logits.shape)}")
    logp = torch.log_softmax(logits.detach().float(), dim=1)
    ent = -(logp.exp() * logp).sum(1)
    return float(ent.mean() / math.log(logits.shape[1]))


def class_histogram(labels: Tensor, num_classes: int, ignore_index: int = 255) -> list[float]:
    """Share of each class among the non-ignored pixels of an integer label map (all zeros when none is valid)."""
    flat = labels.detach().reshape(-1).long()
    flat = flat[(flat != ignore_index) & (flat >= 0) & (flat < num_classes)]
    counts = torch.bincount(flat, minlength=num_classes).double()
    total = counts.sum()
    return (counts / total if total > 0 else counts).tolist()


def total_variation(p: Iterable[float], q: Iterable[float]) -> float:
    """Total-variation distance 0.5 * sum |p - q| between two histograms (0 = identical, 1 = disjoint)."""
    p, q = list(p), list(q)
    if len(p) != len(q):
        raise ValueError(f"total_variation: histograms of different lengths {len(p)} and {len(q)}")
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q))


def loss_groups(losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Sum the named losses by the prefix before the first underscore: seg_main + seg_aux -> seg, adv_* -> adv."""
    groups: dict[str, Tensor] = {}
    for name, value in losses.items():
        key = name.split("_", 1)[0]
        groups[key] = groups[key] + value if key in groups else value
    return groups


def gradient_norms(loss: Tensor, params: Mapping[str, list[Tensor]]) -> dict[str, float]:
    """L2 norm of d loss / d params for each named parameter group (the graph is kept for further calls)."""
    names = [n for n, ps in params.items() if ps]
    flat = [p for n in names for p in params[n]]
    if not flat or not loss.requires_grad:
        return {n: 0.0 for n in params}
    grads = torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True)
    out: dict[str, float] = {n: 0.0 for n in params}
    i = 0
    for n in names:
        sq = 0.0
        for g in grads[i:i + len(params[n])]:
            if g is not None:
                sq += float(g.detach().float().pow(2).sum())
        out[n] = math.sqrt(sq)
        i += len(params[n])
    return out


def gradient_ratios(losses: Mapping[str, Tensor], params: Mapping[str, list[Tensor]]) -> dict[str, float]:
    """``gradnorm_<group>_<params>`` for every loss group and ``gradratio_<group>_<params>`` = that norm over the
    ``seg`` group's, for every other group (no ratios without a seg group; inf when seg's gradient is 0)."""
    groups = loss_groups(losses)
    norms = {g: gradient_norms(v, params) for g, v in groups.items()}
    out = {f"gradnorm_{g}_{p}": v for g, per in norms.items() for p, v in per.items()}
    ref = norms.get(REFERENCE_GROUP)
    if ref is not None:
        for g, per in norms.items():
            if g != REFERENCE_GROUP:
                for p, v in per.items():
                    out[f"gradratio_{g}_{p}"] = v / ref[p] if ref[p] > 0 else math.inf
    return out


def step_diagnostics(model: nn.Module, method: nn.Module, losses: Mapping[str, Tensor],
                     cache: Mapping[str, Tensor]) -> dict[str, object]:
    """All diagnostics of one step: gradient ratios at the backbone and head parameters, then the method's own
    (entropies, histograms, discriminator accuracies; `UDAMethod.diagnostics`). Call before the backward pass."""
    params = {part: [p for p in getattr(model, f"{part}_parameters")() if p.requires_grad]
              for part in ("backbone", "head")}
    out: dict[str, object] = dict(gradient_ratios(losses, params))
    with torch.no_grad():
        out.update(method.diagnostics(cache))
    return out
