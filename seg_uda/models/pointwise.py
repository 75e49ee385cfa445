"""1x1 convolutions computed as one GEMM on channels-last inputs: the same weights and result as ``nn.Conv2d``.

A channels-last [N,C,H,W] map is an [N*H*W, C] matrix in memory, so a stride-1 1x1 convolution is ``F.linear`` on a
view, with no copy. On an Intel Xeon with AMX this made the bf16 ResNet-101 AdvEnt step 1.06-1.12x as fast as with
oneDNN's 1x1 convolutions (six runs, `tools/benchmark.py train ... --variants bf16_cl_gemm config`, docs/speed.md).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.environment import cpu_info
from .conv_swap import empty_like_conv, share_parameters, swap_modules

POINTWISE_IMPLS: Tuple[str, ...] = ("conv", "gemm", "auto")
"""``conv``: ``nn.Conv2d`` (oneDNN / cuDNN). ``gemm``: stride-1 1x1 convolutions of channels-last CPU inputs as one
``F.linear`` over the pixels (`PointwiseGemmConv2d`); any other input falls back to the convolution. ``auto``:
``gemm`` on a CPU with AMX, where it was measured to win (1.105x), ``conv`` elsewhere (on an AMD EPYC with
avx512_bf16 and no AMX it was 0.98x the convolutions; docs/speed.md)."""


def cpu_has_amx() -> bool:
    """Whether this machine's CPU flags include AMX bf16 (Linux ``/proc/cpuinfo``; False where unreadable)."""
    return "amx_bf16" in cpu_info()[1]


def resolve_pointwise_impl(impl: str) -> str:
    """``impl`` with ``auto`` replaced by what it means on this machine; ValueError for unknown names."""
    if impl not in POINTWISE_IMPLS:
        raise ValueError(f"unknown pointwise impl {impl!r}; valid: {', '.join(POINTWISE_IMPLS)}")
    if impl == "auto":
        return "gemm" if cpu_has_amx() else "conv"
    return impl


def pixels_times(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x`` [N,C,H,W] times ``weight`` [C_out, C] over every pixel (a 1x1 convolution as one GEMM), as an
    [N,H,W,C_out] tensor: the pixels read as matrix rows are a view of a channels-last ``x`` (a copy otherwise)."""
    n, c, h, w = x.shape
    return F.linear(x.permute(0, 2, 3, 1).reshape(n * h * w, c), weight, bias).view(n, h, w, weight.shape[0])


class PointwiseGemmConv2d(nn.Conv2d):
    """A 1x1, stride-1, ungrouped ``nn.Conv2d`` whose forward is a GEMM when its input is channels-last.

    Same parameters and state-dict keys as the convolution it replaces; NCHW inputs, and GPU inputs (where it was
    never measured against cuDNN), run the convolution itself.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias, device=device, dtype=dtype)

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        """Whether ``conv`` is a convolution this class computes the same way (1x1, stride 1, no padding, 1 group)."""
        return (type(conv) in (nn.Conv2d, PointwiseGemmConv2d) and conv.kernel_size == (1, 1)
                and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1
                and conv.padding_mode == "zeros")

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "PointwiseGemmConv2d":
        """A module sharing ``conv``'s parameter objects (an optimizer built on them keeps working)."""
        return share_parameters(cls(conv.in_channels, conv.out_channels, bias=conv.bias is not None,
                                    device="meta"), conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last)
                or x.is_contiguous()):
            return super().forward(x)
        weight = self.weight.view(self.out_channels, self.in_channels)
        return pixels_times(x, weight, self.bias).permute(0, 3, 1, 2)  # channels-last [N,C_out,H,W]


def set_pointwise_impl(model: nn.Module, impl: str) -> int:
    """Swap every eligible 1x1 convolution of ``model`` to ``impl`` (`POINTWISE_IMPLS`) in place, weights shared;
    returns how many were eligible."""
    impl = resolve_pointwise_impl(impl)

    def replace(conv: nn.Module) -> nn.Module:
        if impl == "gemm" and type(conv) is nn.Conv2d:
            return PointwiseGemmConv2d.from_conv(conv)
        if impl == "conv" and type(conv) is PointwiseGemmConv2d:
            return share_parameters(empty_like_conv(nn.Conv2d, conv), conv)
        return conv

    return swap_modules(model, PointwiseGemmConv2d.supports, replace)
