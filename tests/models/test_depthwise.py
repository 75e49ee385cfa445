"""Depthwise convolutions with the input gradient as a flipped-kernel forward (`model.depthwise_impl=flipped`): the
same forward, weights and state dict as the convolution, and its gradients."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from seg_uda.models import DeepLabV2, FlippedGradDepthwiseConv2d, set_depthwise_impl


@pytest.mark.parametrize("kernel,dilation", [(5, 2), (3, 2), (5, 1), (3, 1)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_flipped_depthwise_equals_the_convolution_in_float64(kernel: int, dilation: int, bias: bool,
                                                             channels_last: bool, forward_backward) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 6, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, groups=6,
                     bias=bias).double()
    flipped = FlippedGradDepthwiseConv2d.from_conv(conv)
    assert flipped.weight is conv.weight and flipped.bias is conv.bias
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 6, 7, 11, dtype=torch.float64).contiguous(memory_format=fmt)
    grad = torch.randn(2, 6, 7, 11, dtype=torch.float64)
    ref = forward_backward(conv, x, grad)
    out = forward_backward(flipped, x, grad)
    torch.testing.assert_close(out[0], ref[0], rtol=0, atol=0)  # the forward is the convolution itself
    torch.testing.assert_close(out[1], ref[1], rtol=1e-12, atol=1e-12)
    assert len(out[2]) == len(ref[2]) == (2 if bias else 1)
    for a, b in zip(out[2], ref[2]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_flipped_depthwise_passes_gradcheck() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 2, 5, padding=4, dilation=2, groups=2).double()
    flipped = FlippedGradDepthwiseConv2d.from_conv(conv)
    x = torch.randn(2, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: flipped(inp), (x,), fast_mode=True)
    weight = conv.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: FlippedGradDepthwiseConv2d.forward(_with_weight(flipped, w), x),
                                    (weight,), fast_mode=True)


def _with_weight(module: FlippedGradDepthwiseConv2d, weight: torch.Tensor) -> FlippedGradDepthwiseConv2d:
    clone = FlippedGradDepthwiseConv2d.from_conv(module)
    del clone.weight
    clone.weight = weight  # a plain tensor attribute, so gradcheck differentiates through it
    return clone


@pytest.mark.parametrize("kernel,dilation", [(5, 2), (3, 1)])
def test_flipped_depthwise_in_float32_same_forward_close_gradients(kernel: int, dilation: int,
                                                                  forward_backward) -> None:
    """FP32, the shapes that motivate it (Lite0's dilated 1152-channel 5x5 layer, scaled down) and an undilated 3x3
    one (whose weight gradient stays oneDNN's, bit for bit): the forward is oneDNN's own, the gradients differ from
    oneDNN's only by rounding."""
    torch.manual_seed(0)
    conv = nn.Conv2d(96, 96, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, groups=96, bias=False)
    flipped = FlippedGradDepthwiseConv2d.from_conv(conv)
    x, grad = torch.randn(4, 96, 12, 20), torch.randn(4, 96, 12, 20)
    ref = forward_backward(conv, x, grad)
    out = forward_backward(flipped, x, grad)
    assert torch.equal(out[0], ref[0])
    torch.testing.assert_close(out[1], ref[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[2][0], ref[2][0], rtol=1e-5, atol=1e-4)  # sums of 960 products per tap
    assert torch.equal(out[2][0], ref[2][0]) == (kernel == 3 and dilation == 1)


def test_flipped_depthwise_with_a_rectangular_dilated_kernel_and_channels_last(forward_backward) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 5, (3, 5), padding=(1, 4), dilation=(1, 2), groups=5).double()
    flipped = FlippedGradDepthwiseConv2d.from_conv(conv)
    x = torch.randn(3, 5, 6, 13, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(3, 5, 6, 13, dtype=torch.float64)
    ref, out = forward_backward(conv, x, grad), forward_backward(flipped, x, grad)
    for a, b in zip([out[0], out[1], *out[2]], [ref[0], ref[1], *ref[2]]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_flipped_depthwise_falls_back_to_the_convolution_under_autocast() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
    flipped = FlippedGradDepthwiseConv2d.from_conv(conv)
    x = torch.randn(1, 8, 9, 13, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = conv(x), flipped(x)
    assert b.dtype == torch.bfloat16 and torch.equal(a, b)


def test_set_depthwise_impl_swaps_only_stride1_same_size_depthwise_convs() -> None:
    eligible = [nn.Conv2d(8, 8, 5, padding=4, dilation=2, groups=8), nn.Conv2d(8, 8, 3, padding=1, groups=8)]
    others = [nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),  # stride 2
              nn.Conv2d(8, 8, 3, padding=0, groups=8),  # shrinks its input
              nn.Conv2d(8, 8, 3, padding="same", groups=8),  # string padding
              nn.Conv2d(8, 16, 3, padding=1, groups=8),  # grouped, not depthwise
              nn.Conv2d(8, 8, 3, padding=1)]  # dense
    model = nn.Sequential(*eligible, *others)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    assert set_depthwise_impl(model, "flipped") == 2
    assert [type(m) for m in model] == [FlippedGradDepthwiseConv2d] * 2 + [nn.Conv2d] * len(others)
    assert list(model.parameters()) == params  # the same objects: an optimizer built on them still works
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert (model[0].padding, model[0].dilation, model[0].kernel_size) == ((4, 4), (2, 2), (5, 5))
    assert set_depthwise_impl(model, "conv") == 2
    assert all(type(m) is nn.Conv2d for m in model) and list(model.parameters()) == params
    with pytest.raises(ValueError, match="unknown depthwise impl 'fast'; valid: conv, flipped"):
        set_depthwise_impl(model, "fast")


def test_deeplabv2_lite0_with_flipped_depthwise_is_the_same_model() -> None:
    """The CPU default's model (EfficientNet-Lite0, output stride 16, so its last stage is dilated): the same logits,
    and every parameter gradient as with oneDNN's backward (float64)."""
    torch.manual_seed(0)
    kwargs = dict(num_classes=4, encoder_name="tf_efficientnet_lite0", multi_level=True, output_stride=16,
                  aspp_dilations=(3, 6, 9, 12))
    conv = DeepLabV2(**kwargs).double()
    flipped = DeepLabV2(**kwargs, depthwise_impl="flipped").double()
    flipped.load_state_dict(conv.state_dict())
    swapped = [m for m in flipped.modules() if isinstance(m, FlippedGradDepthwiseConv2d)]
    assert len(swapped) >= 10 and any(m.dilation == (2, 2) for m in swapped)
    x = torch.randn(1, 3, 48, 64, dtype=torch.float64)
    outs = []
    for model in (conv, flipped):
        out = model(x)
        (out["out"].square().mean() + out["aux"].square().mean()).backward()
        outs.append((out["out"].detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=0, atol=0)
    assert outs[1][1].keys() == outs[0][1].keys()
    for name, g in outs[0][1].items():
        torch.testing.assert_close(outs[1][1][name], g, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("key,valid", [("depthwise_impl", "conv, flipped"), ("pointwise_impl", "conv, gemm, auto"),
                                       ("aspp_impl", "conv, gemm")])
def test_an_unknown_convolution_impl_in_a_config_is_a_one_line_config_error(key: str, valid: str) -> None:
    from seg_uda.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=f"invalid value 'fast' for 'model.{key}'. Valid options: {valid}"):
        load_config(Path(__file__).parents[2] / "configs" / "synthcity" / "minent_lite0.yaml", [f"model.{key}=fast"])
