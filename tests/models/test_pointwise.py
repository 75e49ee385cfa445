"""1x1 convolutions as GEMMs (`model.pointwise_impl=gemm`): the same function, weights and state dict as the convs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from seg_uda.models import DeepLabV2, PointwiseGemmConv2d, set_pointwise_impl


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_gemm_conv1x1_equals_the_convolution_in_float64(bias: bool, channels_last: bool,
                                                       forward_backward) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 7, 1, bias=bias).double()
    gemm = PointwiseGemmConv2d.from_conv(conv)
    assert gemm.weight is conv.weight and gemm.bias is conv.bias
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 12, 5, 9, dtype=torch.float64).contiguous(memory_format=fmt)
    grad = torch.randn(2, 7, 5, 9, dtype=torch.float64)
    ref = forward_backward(conv, x, grad)
    out = forward_backward(gemm, x, grad)
    torch.testing.assert_close(out[0], ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[1], ref[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(out[2], ref[2]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # channels-last in, channels-last out (what the next batch-norm and convolution expect), gradient too
    assert out[0].is_contiguous(memory_format=fmt) and out[1].is_contiguous(memory_format=fmt)


def test_gemm_conv1x1_under_bf16_autocast_matches_the_convolution() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 32, 1, bias=False).to(memory_format=torch.channels_last)
    gemm = PointwiseGemmConv2d.from_conv(conv)
    x = torch.randn(1, 64, 12, 20).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = conv(x), gemm(x)
    assert b.dtype == torch.bfloat16 and b.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(b.float(), a.float(), rtol=1e-2, atol=1e-2)


def test_set_pointwise_impl_swaps_only_stride1_1x1_convs_and_keeps_the_weights() -> None:
    torch.manual_seed(0)
    model = DeepLabV2(num_classes=3, encoder_name="resnet18", multi_level=True)  # output stride 8
    params = dict(model.named_parameters())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # resnet18: the 1x1 downsample convs of layer2 (stride 2), layer3 and layer4 (stride 1 once dilated)
    assert set_pointwise_impl(model, "gemm") == 2
    swapped = [n for n, m in model.named_modules() if isinstance(m, PointwiseGemmConv2d)]
    assert swapped == ["encoder.layer3.0.downsample.0", "encoder.layer4.0.downsample.0"]
    assert isinstance(model.encoder.layer2[0].downsample[0], nn.Conv2d)
    assert not isinstance(model.encoder.layer2[0].downsample[0], PointwiseGemmConv2d)  # stride 2 stays a conv
    assert all(p is params[n] for n, p in model.named_parameters())  # an optimizer built before still works
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert set_pointwise_impl(model, "conv") == 2
    assert not any(isinstance(m, PointwiseGemmConv2d) for m in model.modules())
    assert all(p is params[n] for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="unknown pointwise impl 'mm'; valid: conv, gemm, auto"):
        set_pointwise_impl(model, "mm")


@pytest.mark.parametrize("has_amx", [True, False])
def test_auto_means_gemm_only_on_a_cpu_with_amx(has_amx: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import seg_uda.models.pointwise as pointwise

    monkeypatch.setattr(pointwise, "cpu_has_amx", lambda: has_amx)
    assert pointwise.resolve_pointwise_impl("auto") == ("gemm" if has_amx else "conv")
    model = DeepLabV2(num_classes=3, encoder_name="resnet18", pointwise_impl="auto")
    assert any(isinstance(m, PointwiseGemmConv2d) for m in model.modules()) == has_amx


def test_cpu_has_amx_reads_the_cpu_flags() -> None:
    from seg_uda.models import cpu_has_amx

    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags on this machine")
    assert cpu_has_amx() == ("amx_bf16" in flags)


def test_deeplabv2_with_gemm_1x1_convs_is_the_same_model() -> None:
    """The paper layout (Caffe ResNet, channels-last): logits and every parameter gradient as with the convs."""
    torch.manual_seed(0)
    kwargs = dict(num_classes=4, encoder_name="resnet50", multi_level=True, caffe_resnet=True)
    conv = DeepLabV2(**kwargs).double().to(memory_format=torch.channels_last)
    gemm = DeepLabV2(**kwargs, pointwise_impl="gemm").double().to(memory_format=torch.channels_last)
    gemm.load_state_dict(conv.state_dict())
    assert sum(isinstance(m, PointwiseGemmConv2d) for m in gemm.modules()) > 30
    x = torch.randn(1, 3, 40, 56, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    outs = []
    for model in (conv, gemm):
        out = model(x)
        (out["out"].square().mean() + out["aux"].square().mean()).backward()
        outs.append((out["out"].detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-10, atol=1e-12)
    assert outs[1][1].keys() == outs[0][1].keys()
    for name, g in outs[0][1].items():
        torch.testing.assert_close(outs[1][1][name], g, rtol=1e-9, atol=1e-12, msg=name)
