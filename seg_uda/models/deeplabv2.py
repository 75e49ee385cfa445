"""DeepLab-v2 segmenter as used by ADVENT: dilated encoder (output stride 8) + summed-ASPP classifiers."""
from __future__ import annotations

from typing import Dict, Iterator, Literal, Optional, Sequence, Tuple

import torch
from torch import nn

from . import MODELS
from .batchnorm import apply_bn_policy
from .encoders import create_encoder, make_resnet_caffe_style
from .depthwise import set_depthwise_impl
from .pointwise import pixels_times, set_pointwise_impl
from .pretrained import LoadReport, WeightsSpec


ASPP_IMPLS: Tuple[str, ...] = ("conv", "gemm")
"""``conv``: one dilated 3x3 convolution per branch, as ADVENT's code. ``gemm``: the same sum computed as one
GEMM over all 9 x len(dilations) taps followed by shifted adds (`summed_dilated_conv3x3_gemm`)."""


def _tap_shifts(h: int, w: int, dilations: Sequence[int]) -> Tuple[Tuple[int, ...], ...]:
    """(tap, y0, y1, x0, x1, dy, dx) of every 3x3 tap of every branch that overlaps an h x w map: output rows
    y0:y1 and columns x0:x1 read the tap's map at (y + dy, x + dx)."""
    shifts = []
    for b, d in enumerate(dilations):
        for ky in range(3):
            dy = (ky - 1) * d
            y0, y1 = max(0, -dy), min(h, h - dy)
            for kx in range(3):
                dx = (kx - 1) * d
                x0, x1 = max(0, -dx), min(w, w - dx)
                if y0 < y1 and x0 < x1:
                    shifts.append((9 * b + 3 * ky + kx, y0, y1, x0, x1, dy, dx))
    return tuple(shifts)


def _shifted_sum(z: torch.Tensor, init: torch.Tensor, shifts: Tuple[Tuple[int, ...], ...]) -> torch.Tensor:
    """``out[n, y, x] = init + sum_t z[n, y + dy_t, x + dx_t, t]`` over the taps' shifts (`_tap_shifts`), as
    in-place slice adds in ``init``'s dtype; `_ShiftedTapSum` is the same with a cheaper backward."""
    n, h, w, _, k = z.shape
    out = init.expand(n, h, w, k).clone()
    for tap, y0, y1, x0, x1, dy, dx in shifts:
        out[:, y0:y1, x0:x1] += z[:, y0 + dy:y1 + dy, x0 + dx:x1 + dx, tap]
    return out


class _ShiftedTapSum(torch.autograd.Function):
    """`_shifted_sum` with its own backward.

    Autograd of `_shifted_sum`'s in-place slice adds allocates and zero-fills a gradient of ``z``'s full size per
    tap and adds them up (36 of each per classifier); here each tap's gradient is one slice copy into one buffer.
    Forward and gradients are bitwise those of the plain slice adds.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, init: torch.Tensor, shifts: Tuple[Tuple[int, ...], ...]) -> torch.Tensor:
        ctx.shifts, ctx.z_shape, ctx.z_dtype, ctx.init_shape = shifts, z.shape, z.dtype, init.shape
        return _shifted_sum(z, init, shifts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_z = grad_init = None
        if ctx.needs_input_grad[0]:
            grad_z = grad.new_zeros(ctx.z_shape, dtype=ctx.z_dtype)
            for tap, y0, y1, x0, x1, dy, dx in ctx.shifts:
                grad_z[:, y0 + dy:y1 + dy, x0 + dx:x1 + dx, tap] = grad[:, y0:y1, x0:x1]
        if ctx.needs_input_grad[1]:
            grad_init = grad.contiguous().sum_to_size(ctx.init_shape)  # summed in the layout autograd sums it in
        return grad_z, grad_init, None


def summed_dilated_conv3x3_gemm(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                                dilations: Sequence[int]) -> torch.Tensor:
    """``sum_i conv2d(x, weights[i], biases[i], padding=d_i, dilation=d_i)`` for 3x3 kernels, as one GEMM.

    Every tap of every branch is a 1x1 convolution of ``x`` read at an offset, so all taps are one matrix
    product ``x[NHW, C] @ W[C, taps * classes]`` followed by a shifted sum of the per-tap maps (taps that fall
    outside the map contribute zero, exactly as the zero padding does; `_ShiftedTapSum`). With few output
    channels (19 classes) oneDNN's dilated convolutions run at a few percent of the GEMM peak; this GEMM does not.
    The shifted sum accumulates in float32 (at least); the result is channels-last when ``x`` is.
    """
    n, c, h, w = x.shape
    k = weights[0].shape[0]
    taps = 9 * len(weights)
    w_all = torch.cat([wt.permute(2, 3, 0, 1).reshape(9 * k, c) for wt in weights])  # rows: branch, ky, kx, class
    z = pixels_times(x, w_all).view(n, h, w, taps, k)
    init = torch.stack(list(biases)).sum(0).to(torch.promote_types(z.dtype, torch.float32))
    out = _ShiftedTapSum.apply(z, init, _tap_shifts(h, w, dilations)).permute(0, 3, 1, 2)
    return out if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() else out.contiguous()


class ASPPClassifier(nn.Module):
    """ADVENT's ``ClassifierModule``: parallel 3x3 convs (padding = dilation, bias) whose outputs are summed.

    Weights are initialised N(0, 0.01); biases keep PyTorch's default init, as in ADVENT. ``impl`` picks how
    the sum is computed (`ASPP_IMPLS`); the parameters and the result are the same either way.
    """

    def __init__(self, in_channels: int, num_classes: int, dilations: Sequence[int] = (6, 12, 18, 24),
                 impl: str = "conv") -> None:
        super().__init__()
        if not dilations:
            raise ValueError("ASPPClassifier needs at least one dilation")
        self.dilations = tuple(int(d) for d in dilations)
        self.impl = impl  # validated by the setter
        self.conv2d_list = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, kernel_size=3, stride=1, padding=d, dilation=d, bias=True)
            for d in dilations)
        for conv in self.conv2d_list:
            nn.init.normal_(conv.weight, 0.0, 0.01)

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in ASPP_IMPLS:
            raise ValueError(f"unknown ASPP impl {value!r}; valid: {', '.join(ASPP_IMPLS)}")
        self._impl = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "gemm":
            return summed_dilated_conv3x3_gemm(x, [c.weight for c in self.conv2d_list],
                                               [c.bias for c in self.conv2d_list], self.dilations)
        out = self.conv2d_list[0](x)
        for conv in self.conv2d_list[1:]:
            out = out + conv(x)
        return out


def set_aspp_impl(model: nn.Module, impl: str) -> int:
    """Switch every `ASPPClassifier` in ``model`` to ``impl`` (weights untouched); returns how many there were."""
    heads = [m for m in model.modules() if isinstance(m, ASPPClassifier)]
    for m in heads:
        m.impl = impl
    return len(heads)


@MODELS.register("deeplabv2")
class DeepLabV2(nn.Module):
    """ADVENT's DeepLab-v2 on any SMP/timm encoder; ``forward`` -> ``{"out", "aux"?, "feat"}`` at feature resolution.

    ``out``: main logits from the deepest stage; ``aux`` (``multi_level``): logits from the second-to-last
    stage (ResNet layer3), as ADVENT's multi-level variant; ``feat``: deepest encoder features.
    ``caffe_resnet`` reproduces ADVENT's Caffe ResNet layout (use with ``DeepLab_resnet_pretrained_imagenet.pth``).
    ``aspp_impl``: how the classifiers compute their sum (`ASPP_IMPLS`); ``gemm`` is faster for wide features
    (ResNet's 1024/2048 channels), ``conv`` for narrow ones (tools/benchmark.py train, README).
    ``pointwise_impl``: ``gemm`` computes the encoder's stride-1 1x1 convolutions of channels-last inputs as GEMMs
    (`POINTWISE_IMPLS`; same weights and result), faster for ResNet's bottlenecks in bf16 on a CPU with AMX;
    ``auto`` picks it on such a CPU only.
    ``depthwise_impl``: ``flipped`` computes the backward of the encoder's stride-1 depthwise convolutions with
    forward convolutions (`DEPTHWISE_IMPLS`; same weights and forward, gradients equal up to FP32 rounding), faster
    on the CPU measured for an output-stride-16 EfficientNet's 5x5 and dilated ones.
    """

    def __init__(
        self,
        num_classes: int = 19,
        encoder_name: str = "resnet101",
        encoder_weights: WeightsSpec = None,
        multi_level: bool = True,
        output_stride: int = 8,
        aspp_dilations: Sequence[int] = (6, 12, 18, 24),
        bn_policy: str = "frozen",
        caffe_resnet: bool = False,
        in_channels: int = 3,
        aspp_impl: Literal["conv", "gemm"] = "conv",
        pointwise_impl: Literal["conv", "gemm", "auto"] = "conv",
        depthwise_impl: Literal["conv", "flipped"] = "conv",
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.multi_level = multi_level
        self.output_stride = output_stride
        self.encoder, report = create_encoder(encoder_name, encoder_weights, output_stride=output_stride,
                                              in_channels=in_channels)
        self.pretrained_report: Optional[LoadReport] = report
        if caffe_resnet:
            make_resnet_caffe_style(self.encoder)
        set_pointwise_impl(self.encoder, pointwise_impl)
        set_depthwise_impl(self.encoder, depthwise_impl)
        channels = list(self.encoder.out_channels)
        self.feat_channels: int = channels[-1]
        self.out_stride: int = int(self.encoder.output_stride)  # input size / "out" size
        self.aux_channels: int = channels[-2]
        self.classifier = ASPPClassifier(self.feat_channels, num_classes, aspp_dilations, impl=aspp_impl)
        self.aux_classifier = (ASPPClassifier(self.aux_channels, num_classes, aspp_dilations, impl=aspp_impl)
                               if multi_level else None)
        apply_bn_policy(self, bn_policy)

    def forward(self, x: torch.Tensor, grl_lambda: Optional[float] = None) -> Dict[str, torch.Tensor]:
        """``grl_lambda`` (open-set OSBP): also return ``out_rev``/``aux_rev``, the heads applied to the features
        through a gradient-reversal layer (classifier gradients normal, feature gradients times -lambda)."""
        feats = self.forward_features(x)
        result = self.forward_head(feats)
        if grl_lambda is not None:
            from .grl import grad_reverse

            rev = self.forward_head({k: grad_reverse(v, grl_lambda) for k, v in feats.items()})
            result.update({f"{k}_rev": v for k, v in rev.items() if k != "feat"})
        return result

    def forward_features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Encoder features the heads read: ``feat`` (deepest) and, when multi-level, ``aux_feat``."""
        features = self.encoder(x)
        out = {"feat": features[-1]}
        if self.aux_classifier is not None:
            out["aux_feat"] = features[-2]
        return out

    def forward_head(self, feats: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Classifier logits from :meth:`forward_features` output: ``{"out", "feat", "aux"?}``."""
        result = {"out": self.classifier(feats["feat"]), "feat": feats["feat"]}
        if self.aux_classifier is not None:
            result["aux"] = self.aux_classifier(feats["aux_feat"])
        return result

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Encoder parameters (1x LR in ADVENT; may be frozen). Filter on ``requires_grad`` for the optimizer."""
        return self.encoder.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Classifier parameters (10x LR in ADVENT)."""
        for module in (self.classifier, self.aux_classifier):
            if module is not None:
                yield from module.parameters()
