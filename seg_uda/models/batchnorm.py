"""BatchNorm policies for small-batch segmentation training (frozen / ADVENT frozen-affine / plain / sync)."""
from __future__ import annotations

from typing import Tuple

from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d
from timm.layers import FrozenBatchNormAct2d, convert_sync_batchnorm, freeze_batch_norm_2d, unfreeze_batch_norm_2d

BN_POLICIES: Tuple[str, ...] = ("frozen", "frozen_affine", "train", "sync")
"""``frozen``: running stats used, nothing trains (FrozenBatchNorm2d; safe at batch 1, the default).
``frozen_affine``: ADVENT's code: weight/bias have requires_grad=False, running stats still update in train mode.
``train``: plain trainable BatchNorm. ``sync``: SyncBatchNorm (only meaningful under DDP)."""

_FROZEN_TYPES = (FrozenBatchNorm2d, FrozenBatchNormAct2d)


def is_batchnorm(module: nn.Module) -> bool:
    """True for any (trainable, sync or frozen) BatchNorm layer, including timm's BatchNormAct2d variants."""
    return isinstance(module, (nn.modules.batchnorm._BatchNorm,) + _FROZEN_TYPES)


def apply_bn_policy(model: nn.Module, policy: str) -> nn.Module:
    """Apply a BatchNorm ``policy`` (one of :data:`BN_POLICIES`) to every BN layer of ``model``.

    Children are converted in place; the (possibly new) module is returned, which matters only when
    ``model`` itself is a BatchNorm layer. ``frozen`` converts BN to FrozenBatchNorm2d (buffers, no
    parameters), so it keeps using running statistics even after ``model.train()``.
    """
    if policy not in BN_POLICIES:
        raise ValueError(f"unknown BatchNorm policy '{policy}'. Valid policies: {', '.join(BN_POLICIES)}")
    if policy == "frozen":
        return freeze_batch_norm_2d(model)
    model = unfreeze_batch_norm_2d(model)  # frozen -> plain BN first, so policies can be re-applied
    if policy == "sync":
        model = convert_sync_batchnorm(model)
    trainable_affine = policy != "frozen_affine"
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            for p in m.parameters(recurse=False):
                p.requires_grad_(trainable_affine)
    return model
