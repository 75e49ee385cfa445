"""Swapping a model's convolutions in place for equivalent implementations (`pointwise_impl`, `depthwise_impl`),
with the same parameter objects, so that state dicts and optimizers built on them keep working."""
from __future__ import annotations

from typing import Callable

from torch import nn


def swap_modules(model: nn.Module, supports: Callable[[nn.Module], bool],
                 replace: Callable[[nn.Module], nn.Module]) -> int:
    """Replace, in place, every submodule of ``model`` that ``supports`` accepts by ``replace(module)`` (which may
    return the module itself); returns how many were accepted."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not supports(child):
                continue
            count += 1
            new = replace(child)
            if new is not child:
                setattr(parent, name, new)
    return count


def empty_like_conv(cls: type, conv: nn.Conv2d) -> nn.Conv2d:
    """An empty ``cls`` convolution (meta device) with ``conv``'s hyper-parameters, for `share_parameters`."""
    return cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
               dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, device="meta")


def share_parameters(new: nn.Conv2d, old: nn.Conv2d) -> nn.Conv2d:
    """``new`` (built on the meta device) with ``old``'s weight and bias objects and training mode."""
    new.weight = old.weight
    new.bias = old.bias
    return new.train(old.training)
