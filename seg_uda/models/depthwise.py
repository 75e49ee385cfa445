"""Depthwise convolutions whose backward is computed with forward convolutions.

On the CPU measured, oneDNN's FP32 backward of a depthwise convolution ran far slower than its forward: to the
input 10-20x for the dilated ones of EfficientNet-Lite0 at output stride 16 (1152 channels, 5x5, dilation 2), to
the weight at about 1.5 GFLOP/s for every 5x5 one (`tools/benchmark.py depthwise`, docs/speed.md). For stride 1 and
"same" padding, the input gradient is a depthwise convolution of the output gradient with the flipped kernel, and
the weight gradient one depthwise convolution per sample of the padded input with that sample's output gradient as
the kernel. Same weights and forward; the gradients equal oneDNN's up to FP32 rounding (not bit for bit), so the
SynthCity protocol's configs keep ``conv``.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .conv_swap import empty_like_conv, share_parameters, swap_modules

DEPTHWISE_IMPLS: Tuple[str, ...] = ("conv", "flipped")
"""``conv``: ``nn.Conv2d`` (oneDNN / cuDNN, forward and backward). ``flipped``: stride-1, same-size depthwise
convolutions of CPU inputs take their input gradient from a forward convolution with the flipped kernel, and, for
kernels above 3x3 or dilated ones, their weight gradient from per-sample forward convolutions
(`FlippedGradDepthwiseConv2d`; oneDNN's own weight gradient of an undilated 3x3 was the faster one)."""


class _FlippedGradDepthwise(torch.autograd.Function):
    """``F.conv2d(x, w, b, 1, padding, dilation, groups=C)`` with its gradients from forward convolutions."""

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
        if ctx.needs_input_grad[1]:
            grad_w = (_weight_grad_as_forward(x, grad_out, padding, dilation, weight.shape)
                      if max(weight.shape[-2:]) > 3 or dilation != (1, 1) else torch.ops.aten.convolution_backward(
                          grad_out, x, weight, None, [1, 1], list(padding), list(dilation), False, [0, 0],
                          x.shape[1], [False, True, False])[1])
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


def _weight_grad_as_forward(x: torch.Tensor, grad_out: torch.Tensor, padding: Tuple[int, int],
                            dilation: Tuple[int, int], shape: torch.Size) -> torch.Tensor:
    """The weight gradient of a stride-1 depthwise convolution as one forward depthwise convolution per sample: the
    padded input correlated with that sample's output gradient as the kernel, at a stride of the dilation."""
    ph, pw = padding
    xp = F.pad(x, (pw, pw, ph, ph))
    c = x.shape[1]
    grad = sum(F.conv2d(xp[n:n + 1], grad_out[n].unsqueeze(1), None, dilation, 0, 1, c) for n in range(x.shape[0]))
    return grad.reshape(shape)


class FlippedGradDepthwiseConv2d(nn.Conv2d):
    """A depthwise, stride-1, same-size ``nn.Conv2d`` whose gradients come from forward convolutions (module doc).

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
        return share_parameters(empty_like_conv(cls, conv), conv)

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
    return swap_modules(model, FlippedGradDepthwiseConv2d.supports, lambda conv: conv if type(conv) is target
                        else share_parameters(empty_like_conv(target, conv), conv))
