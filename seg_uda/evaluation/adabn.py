"""AdaBN (Li et al., 2016): re-estimate every BatchNorm layer's running statistics on unlabelled target images.

A model trained with batch statistics evaluates with the running statistics of what it saw last in training (the
source, or under ADVENT's policy a mix of both domains). AdaBN replaces them with the target's: a label-free
adaptation baseline, and a control for how much of a method's gain is the statistics alone.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

__all__ = ["reestimate_bn_statistics", "running_stat_layers"]


def running_stat_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics (FrozenBatchNorm2d keeps none to re-estimate)."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def reestimate_bn_statistics(model: nn.Module, dataset: Any, max_images: Optional[int] = None,
                             batch_size: int = 4, num_workers: int = 0) -> int:
    """Replace the running mean and variance of every BatchNorm layer of ``model`` with their plain average over
    batches of ``batch_size`` of the first ``max_images`` images of ``dataset`` (items with "image"), in order;
    nothing else changes (weights, other layers' modes). Returns the number of images used.

    Every rank of a distributed run reads the same images, so the statistics stay identical across ranks.
    """
    layers = running_stat_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BatchNorm layer with running statistics to re-estimate "
                         "(model.bn_policy 'frozen' converts them to FrozenBatchNorm2d; AdaBN needs a model trained "
                         "with 'frozen_affine', 'train' or 'sync')")
    n = len(dataset) if max_images is None else min(int(max_images), len(dataset))
    if n < 1:
        raise ValueError(f"AdaBN needs at least one image, got max_images={max_images} of {len(dataset)}")
    device = next(model.parameters()).device
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = model.training
    saved = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches, not an exponential one
        m.train()
    try:
        for batch in loader:
            model(batch["image"].to(device))
    finally:
        for m, momentum in zip(layers, saved):
            m.momentum = momentum
        model.train(was_training)
    return n
