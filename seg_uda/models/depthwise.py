"""Depthwise convolutions whose gradient to the input is computed as a forward convolution with the flipped kernel.

On the CPUs measured, oneDNN's FP32 backward-to-input of a dilated depthwise convolution ran 10-20x slower than
its forward (EfficientNet-Lite0 at output stride 16: 1152 channels, 5x5, dilation 2; `tools/benchmark.py depthwise`,
docs/speed.md). For stride 1 and "same" padding that gradient is itself a depthwise convolution of the output
gradient with the spatially flipped kernel, at the forward's speed. Same weights and forward; the input gradient
equals oneDNN's up to FP32 rounding (not bit for bit), so the SynthCity protocol's configs keep ``conv``.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .pointwise import share_parameters

DEPTHWISE_IMPLS: Tuple[str, ...] = ("conv", "flipped")
"""``conv``: ``nn.Conv2d`` (oneDNN / cuDNN, forward and backward). ``flipped``: stride-1, same-size depthwise
convolutions of FP32 CPU inputs take their input gradient from a forward convolution with the flipped kernel
(`FlippedGradDepthwiseConv2d`); the weight gradient is oneDNN's, as with ``conv``."""


class _FlippedGradDepthwise(torch.autograd.Function):
    """``F.conv2d(x, w, b, 1, padding, dilation, groups=C)`` with the input gradient as a flipped-kernel forward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                padding: Tuple[int, int], dilation: Tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (padding, dilation, bias is not None)
        return F.conv2d(x, weight, bias, 1, padding, dilation, x.shape[1])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        padding, dilation, has_bias = ctx.conf
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # the transposed convolution of a same-size stride-1 one: flip the kernel
            grad_x = F.conv2d(grad_out, weight.flip(-2, -1), None, 1, padding, dilation, x.shape[1])
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out, x, weight, [weight.shape[0]] if has_bias else None, [1, 1], list(padding), list(dilation),
                False, [0, 0], x.shape[1], [False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        return grad_x, grad_w, grad_b, None, None


class FlippedGradDepthwiseConv2d(nn.Conv2d):
    """A depthwise, stride-1, same-size ``nn.Conv2d`` whose input gradient is a flipped-kernel forward convolution.

    Same parameters and state-dict keys as the convolution it replaces. Inputs on other devices, of another dtype
    than the weight, or under autocast run the convolution itself.
    """

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        """Whether ``conv`` is depthwise (groups = in = out channels > 1), stride 1, zero-padded to its input's size
        (2 x padding = dilation x (kernel - 1) on both axes)."""
        return (type(conv) in (nn.Conv2d, FlippedGradDepthwiseConv2d) and conv.groups > 1
                and conv.groups == conv.in_channels == conv.out_channels and conv.stride == (1, 1)
                and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
                and all(2 * p == d * (k - 1) for p, d, k in zip(conv.padding, conv.dilation, conv.kernel_size)))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "FlippedGradDepthwiseConv2d":
        """A module sharing ``conv``'s parameter objects (an optimizer built on them keeps working)."""
        return share_parameters(_like(cls, conv), conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dtype != self.weight.dtype or torch.is_autocast_enabled("cpu")
                or not (x.requires_grad or self.weight.requires_grad)):
            return super().forward(x)
        return _FlippedGradDepthwise.apply(x, self.weight, self.bias, self.padding, self.dilation)


def set_depthwise_impl(model: nn.Module, impl: str) -> int:
    """Swap every eligible depthwise convolution of ``model`` to ``impl`` (`DEPTHWISE_IMPLS`) in place, weights
    shared; returns how many were eligible."""
    if impl not in DEPTHWISE_IMPLS:
        raise ValueError(f"unknown depthwise impl {impl!r}; valid: {', '.join(DEPTHWISE_IMPLS)}")
    target = FlippedGradDepthwiseConv2d if impl == "flipped" else nn.Conv2d
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not FlippedGradDepthwiseConv2d.supports(child):
                continue
            count += 1
            if type(child) is not target:
                setattr(parent, name, share_parameters(_like(target, child), child))
    return count


def _like(cls: type, conv: nn.Conv2d) -> nn.Conv2d:
    """An empty ``cls`` convolution (meta device) with ``conv``'s hyper-parameters."""
    return cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
               dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, device="meta")

