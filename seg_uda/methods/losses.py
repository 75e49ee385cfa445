"""Loss functions shared by the UDA methods (formulas follow ADVENT, Vu et al. CVPR 2019).

Pure functions of tensors; usable without any method class.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

__all__ = ["seg_loss", "entropy_map", "entropy_loss", "class_prior_loss", "bce_with_logits", "upsample_logits"]

_EPS = 1e-30  # ADVENT's epsilon inside log2(p + eps)


def _check_prob(prob: Tensor, fn: str) -> None:
    if prob.dim() != 4:
        raise ValueError(f"{fn}: expected probabilities of shape [N,C,H,W], got shape {tuple(prob.shape)}")
    if prob.shape[1] < 2:
        raise ValueError(f"{fn}: need at least 2 classes to normalise by log2(C), got C={prob.shape[1]}")


def upsample_logits(logits: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinearly resize [N,K,h,w] logits to `size` (align_corners=True, as ADVENT); no-op if already that size.

    The result is NCHW even for channels_last logits: the softmax and entropy maps that follow would otherwise
    each copy the label-size maps back to NCHW (6-16 ms per map in the bf16 ResNet-101 step)."""
    if logits.dim() != 4:
        raise ValueError(f"upsample_logits: expected logits of shape [N,K,h,w], got shape {tuple(logits.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(logits.shape[-2:]) == size:
        return logits
    return F.interpolate(logits.contiguous(), size=size, mode="bilinear", align_corners=True)


def _world_size() -> int:
    """Number of DDP ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def seg_loss(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Pixel-wise cross-entropy of `logits` [N,K,h,w] upsampled to `labels` [N,H,W], mean over non-ignored pixels.

    Returns a zero that still carries a (zero) gradient when every pixel is ignored, instead of NaN.
    Under DDP (W ranks) the valid-pixel count is summed over ranks and the rank's sum scaled by W, so that DDP's
    gradient average is the mean over every valid pixel of the global batch (W ranks x B = 1 process x W*B);
    every rank must then call it in the same order, as the training step does.
    """
    if labels.dim() != 3:
        raise ValueError(f"seg_loss: expected labels of shape [N,H,W], got shape {tuple(labels.shape)}")
    if logits.dim() != 4 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"seg_loss: logits shape {tuple(logits.shape)} does not match labels shape {tuple(labels.shape)} "
            "(expected logits [N,K,h,w] with the same N)"
        )
    if labels.dtype != torch.long:
        labels = labels.long()
    logits = upsample_logits(logits, labels.shape[-2:])
    # Sum / count instead of reduction="mean": same value, but 0 (not NaN) when all pixels are ignored,
    # and no host synchronisation.
    total = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="sum")
    world = _world_size()
    if world == 1:
        return total / (labels != ignore_index).sum().clamp_min(1)
    count = (labels != ignore_index).sum()
    dist.all_reduce(count, op=dist.ReduceOp.SUM)
    return total * world / count.clamp_min(1)


def entropy_map(prob: Tensor) -> Tensor:
    """ADVENT's weighted self-information map I = -p * log2(p + 1e-30) / log2(C), shape [N,C,H,W] (the D input)."""
    _check_prob(prob, "entropy_map")
    prob = prob.float()  # 1e-30 underflows in half precision
    return -prob * torch.log2(prob + _EPS) / math.log2(prob.shape[1])


def entropy_loss(prob: Tensor) -> Tensor:
    """ADVENT's entropy loss: -sum(p * log2(p + 1e-30)) / (N*H*W*log2(C)), the mean normalised entropy in [0, 1]."""
    _check_prob(prob, "entropy_loss")
    n, c, h, w = prob.shape
    prob = prob.float()
    return -(prob * torch.log2(prob + _EPS)).sum() / (n * h * w * math.log2(c))


def class_prior_loss(prob: Tensor, prior: Tensor, mu: float) -> Tensor:
    """ADVENT's class-ratio prior (Sec. 3.3): sum over classes of max(0, mu * prior_c - mean_hw p_c), mean over images.

    Penalises an image whose mean predicted probability of class c falls below `mu` times its share `prior` of the
    source labels: entropy minimisation's bias towards the majority classes, held back by a relaxed source prior.
    """
    _check_prob(prob, "class_prior_loss")
    if prior.dim() != 1 or prior.shape[0] != prob.shape[1]:
        raise ValueError(f"class_prior_loss: prior must have shape [C={prob.shape[1]}], got {tuple(prior.shape)}")
    mean = prob.float().mean(dim=(2, 3))  # [N, C]
    return (mu * prior.to(mean)[None] - mean).clamp_min(0).sum(1).mean()


def bce_with_logits(d_out: Tensor, domain_label: float) -> Tensor:
    """Mean binary cross-entropy of discriminator logits against a constant target map filled with `domain_label`."""
    if not 0.0 <= float(domain_label) <= 1.0:
        raise ValueError(f"bce_with_logits: domain_label must be in [0, 1], got {domain_label}")
    d_out = d_out.float()
    return F.binary_cross_entropy_with_logits(d_out, torch.full_like(d_out, float(domain_label)))
