"""Segmenters (registry-wide interface), ADVENT classifier/discriminator structure and BatchNorm policies."""
import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from seg_uda.models import (ASPP_IMPLS, MODELS, ASPPClassifier, DeepLabV2, DeepLabV3Plus, DomainClassifier,
                            FCDiscriminator, build_model, list_models, set_aspp_impl)
from seg_uda.models.batchnorm import BN_POLICIES, apply_bn_policy, is_batchnorm
from seg_uda.models.deeplabv2 import _shifted_sum, _ShiftedTapSum, _tap_shifts

torch.set_num_threads(1)
SMALL_ENCODERS = ["resnet18", "tf_efficientnet_lite0"]


def _bn_layers(model: nn.Module):
    return [m for m in model.modules() if is_batchnorm(m)]


# ------------------------------------------------------------------------------------------ registry
def test_registry_lists_models() -> None:
    assert {"deeplabv2", "deeplabv3plus"} <= set(list_models())
    assert MODELS.get("deeplabv2") is DeepLabV2 and MODELS.get("deeplabv3plus") is DeepLabV3Plus


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(KeyError) as err:
        build_model("deeplabv9")
    for name in list_models():
        assert name in str(err.value)


def test_unknown_encoder_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="not_an_encoder"):
        DeepLabV2(encoder_name="not_an_encoder")


# ------------------------------------------------------------------------- common interface (all models)
@pytest.mark.parametrize("encoder", SMALL_ENCODERS)
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_interface(name: str, encoder: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=5, encoder_name=encoder, encoder_weights=None)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert isinstance(out, dict) and {"out", "feat"} <= set(out)
    s = model.out_stride
    assert out["out"].shape == (2, 5, 64 // s, 64 // s)
    assert out["feat"].dim() == 4 and out["feat"].shape[:2] == (2, model.feat_channels)
    if "aux" in out:
        assert out["aux"].shape[:2] == (2, 5)

    loss = sum(v.float().pow(2).mean() for k, v in out.items() if k != "feat")
    loss.backward()
    head = list(model.head_parameters())
    backbone = list(model.backbone_parameters())
    assert head and backbone
    assert all(p.grad is not None for p in head)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone)

    head_ids, bb_ids = {id(p) for p in head}, {id(p) for p in backbone}
    assert len(head_ids) == len(head) and len(bb_ids) == len(backbone)
    assert not head_ids & bb_ids
    assert head_ids | bb_ids == {id(p) for p in model.parameters()}


def test_deeplabv2_stride8_and_multi_level() -> None:
    x = torch.randn(1, 3, 64, 48)
    ml = DeepLabV2(num_classes=3, encoder_name="resnet18")
    out = ml(x)
    assert ml.out_stride == 8
    assert out["out"].shape == (1, 3, 8, 6) and out["aux"].shape == (1, 3, 8, 6)
    assert out["feat"].shape == (1, 512, 8, 6)
    assert ml.aux_classifier.conv2d_list[0].in_channels == 256  # layer3 (second-to-last stage) of resnet18

    single = DeepLabV2(num_classes=3, encoder_name="resnet18", multi_level=False)
    assert single.aux_classifier is None and "aux" not in single(x)


def test_deeplabv2_resnet101_paper_setting() -> None:
    """ResNet-101 at output stride 8: layer3 dilation 2, layer4 dilation 4, ASPP heads on 2048 / 1024 channels."""
    m = DeepLabV2(num_classes=19, encoder_name="resnet101", caffe_resnet=True)
    enc = m.encoder
    for block in enc.layer3:
        assert block.conv2.dilation == (2, 2) and block.conv2.stride == (1, 1) and block.conv2.padding == (2, 2)
    for block in enc.layer4:
        assert block.conv2.dilation == (4, 4) and block.conv2.stride == (1, 1) and block.conv2.padding == (4, 4)
    assert m.feat_channels == 2048 and m.classifier.conv2d_list[0].in_channels == 2048
    assert m.aux_classifier.conv2d_list[0].in_channels == 1024
    # Caffe/ADVENT layout: stride on the 1x1 conv of layer2's first block, ceil-mode max-pool.
    assert enc.layer2[0].conv1.stride == (2, 2) and enc.layer2[0].conv2.stride == (1, 1)
    assert enc.maxpool.ceil_mode


def test_caffe_resnet_rejects_basic_blocks() -> None:
    with pytest.raises(ValueError, match="bottleneck"):
        DeepLabV2(encoder_name="resnet18", caffe_resnet=True)


def test_advent_classifier_structure() -> None:
    torch.manual_seed(0)
    clf = ASPPClassifier(512, 19)
    convs = list(clf.conv2d_list)
    assert len(convs) == 4
    for conv, d in zip(convs, (6, 12, 18, 24)):
        assert conv.kernel_size == (3, 3) and conv.dilation == (d, d) and conv.padding == (d, d)
        assert conv.stride == (1, 1) and conv.bias is not None
        assert conv.in_channels == 512 and conv.out_channels == 19
        # N(0, 0.01) init: 19*512*9 samples, so the sample std is within ~1% of 0.01.
        assert abs(conv.weight.std().item() - 0.01) < 0.0005
        assert abs(conv.weight.mean().item()) < 0.0005
    x = torch.randn(1, 512, 7, 9)
    assert torch.allclose(clf(x), sum(c(x) for c in convs), atol=1e-6)
    assert clf(x).shape == (1, 19, 7, 9)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(2, 9, 13), (1, 30, 40)])  # small maps: the large dilations fall off the edge
def test_aspp_gemm_equals_dilated_convs(channels_last: bool, size: tuple) -> None:
    """The one-GEMM classifier gives the per-branch convolutions' sum and gradients (x, weights, biases)."""
    torch.manual_seed(0)
    n, h, w = size
    clf = ASPPClassifier(24, 5).double()
    for conv in clf.conv2d_list:
        nn.init.normal_(conv.bias)
    x0 = torch.randn(n, 24, h, w, dtype=torch.float64)
    if channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    results = {}
    for impl in ASPP_IMPLS:
        clf.impl = impl
        clf.zero_grad()
        x = x0.clone().requires_grad_()
        y = clf(x)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
        (y * g).sum().backward()
        results[impl] = [y.detach(), x.grad] + [p.grad.clone() for p in clf.parameters()]
        assert y.shape == (n, 5, h, w)
        assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    for a, b in zip(results["conv"], results["gemm"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_shifted_tap_sum_gradients_are_autograds(dtype: torch.dtype) -> None:
    """The custom backward of the GEMM classifier's shifted sum gives autograd's gradients bit for bit (bf16 maps
    into a float32 sum, as under autocast), and passes gradcheck in float64."""
    h, w, dilations = 11, 14, (2, 6, 12)  # 12 falls off the 11-row map: those taps are skipped
    shifts = _tap_shifts(h, w, dilations)
    assert len(shifts) < 9 * len(dilations)
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(2, h, w, 9 * len(dilations), 3, generator=gen).to(dtype)
    init0 = torch.randn(3, generator=gen, dtype=torch.promote_types(dtype, torch.float32))
    g = torch.randn(2, 3, h, w, generator=gen, dtype=init0.dtype)
    results = []
    for fn in (_shifted_sum, _ShiftedTapSum.apply):  # plain autograd through the slice adds, then the custom one
        z, init = z0.clone().requires_grad_(), init0.clone().requires_grad_()
        out = fn(z, init, shifts)
        (out.permute(0, 3, 1, 2) * g).sum().backward()  # the classifier's NCHW view, as in the model
        results.append((out, z.grad, init.grad))
    for a, b in zip(*results):
        assert a.dtype == b.dtype and torch.equal(a, b)
    if dtype == torch.float64:
        z, init = z0[:1, :, :6].clone().requires_grad_(), init0.clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda a, b: _ShiftedTapSum.apply(a, b, _tap_shifts(h, 6, dilations)),
                                        (z, init))


def test_aspp_gemm_under_bf16_autocast_matches_fp32() -> None:
    torch.manual_seed(0)
    clf = ASPPClassifier(256, 19)
    x = torch.randn(1, 256, 20, 24).contiguous(memory_format=torch.channels_last)
    ref = clf(x)
    clf.impl = "gemm"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = clf(x)
    assert out.dtype == torch.float32  # the shifted sum accumulates in float32
    assert (out - ref).abs().max() < 0.02 * ref.abs().max()


def test_aspp_impl_is_validated_and_switchable() -> None:
    with pytest.raises(ValueError, match="conv, gemm"):
        ASPPClassifier(8, 3, impl="winograd")
    model = DeepLabV2(num_classes=3, encoder_name="resnet18", multi_level=True, aspp_impl="gemm")
    assert {m.impl for m in model.modules() if isinstance(m, ASPPClassifier)} == {"gemm"}
    assert set_aspp_impl(model, "conv") == 2
    assert {m.impl for m in model.modules() if isinstance(m, ASPPClassifier)} == {"conv"}
    # same parameters either way: a checkpoint of one loads into the other
    assert set(model.state_dict()) == set(DeepLabV2(num_classes=3, encoder_name="resnet18").state_dict())


def test_deeplabv3plus_out_is_smp_logits_before_upsampling() -> None:
    torch.manual_seed(0)
    ours = DeepLabV3Plus(num_classes=4, encoder_name="resnet18", bn_policy="train").eval()
    ref = smp.DeepLabV3Plus(encoder_name="resnet18", encoder_weights=None, classes=4).eval()
    ref.load_state_dict(ours.net.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = ours(x)
        up = F.interpolate(out["out"], scale_factor=4, mode="bilinear", align_corners=True)
        assert torch.allclose(up, ref(x), atol=1e-5)
        assert torch.equal(out["feat"], ours.encoder(x)[-1])
    assert "aux" not in out


# ------------------------------------------------------------------------------------------ discriminator
@pytest.mark.parametrize("size", [(64, 64), (65, 97)])
def test_discriminator_output_shape(size) -> None:
    d = FCDiscriminator(in_channels=19)
    h, w = size
    for _ in range(5):  # each 4x4/s2/p1 conv maps n -> floor((n + 2 - 4) / 2) + 1 = floor(n / 2)
        h, w = h // 2, w // 2
    assert d(torch.randn(2, 19, *size)).shape == (2, 1, h, w)


def test_discriminator_structure() -> None:
    d = FCDiscriminator(in_channels=7, ndf=8)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(7, 8), (8, 16), (16, 32), (32, 64), (64, 1)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)
    assert isinstance(list(d.layers)[-1], nn.Conv2d)  # no activation after the classifier
    with pytest.raises(ValueError, match="7"):
        d(torch.randn(1, 3, 32, 32))


def test_domain_classifier_structure() -> None:
    """DANN's per-location classifier: 3x3 -> ReLU -> 3x3 -> ReLU -> 1x1, one logit per feature location."""
    d = DomainClassifier(in_channels=6, hidden=5)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(6, 5, (3, 3)), (5, 5, (3, 3)),
                                                                               (5, 1, (1, 1))]
    assert d(torch.randn(2, 6, 7, 9)).shape == (2, 1, 7, 9)
    with pytest.raises(ValueError, match="in_channels"):
        DomainClassifier(in_channels=0)


# ------------------------------------------------------------------------------------------ BatchNorm policies
def test_unknown_bn_policy_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        apply_bn_policy(nn.BatchNorm2d(3), "freeze")
    for p in BN_POLICIES:
        assert p in str(err.value)


@pytest.mark.parametrize("encoder", SMALL_ENCODERS)
def test_frozen_bn_has_no_params_and_train_equals_eval(encoder: str) -> None:
    torch.manual_seed(0)
    m = DeepLabV2(num_classes=3, encoder_name=encoder, bn_policy="frozen")
    bns = _bn_layers(m)
    assert bns and not any(isinstance(b, nn.modules.batchnorm._BatchNorm) for b in bns)
    assert all(len(list(b.parameters())) == 0 for b in bns)
    x = torch.randn(2, 3, 32, 32)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    out_train = m(x)["out"]
    out_train.sum().backward()
    m.eval()
    with torch.no_grad():
        out_eval = m(x)["out"]
    assert torch.equal(out_train.detach(), out_eval)
    for k, v in m.state_dict().items():  # running stats untouched by train-mode forwards
        assert torch.equal(v, before[k]), k


def test_frozen_bn_keeps_statistics_of_converted_layers() -> None:
    bn = nn.BatchNorm2d(4, eps=1e-3)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 4, 5, 5)
    ref = bn.eval()(x)
    frozen = apply_bn_policy(bn, "frozen")
    assert isinstance(frozen, FrozenBatchNorm2d) and frozen.eps == 1e-3
    assert torch.allclose(frozen.train()(x), ref, atol=1e-6)


def test_batch1_deeplabv3plus_trains_with_frozen_bn() -> None:
    torch.manual_seed(0)
    m = DeepLabV3Plus(num_classes=3, encoder_name="resnet18", bn_policy="frozen").train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.randn(1, 3, 64, 64)
    w0 = m.net.segmentation_head[0].weight.detach().clone()
    m(x)["out"].pow(2).mean().backward()
    opt.step()
    assert not torch.equal(w0, m.net.segmentation_head[0].weight)


def test_batch1_deeplabv3plus_fails_with_plain_bn() -> None:
    """The reason for the frozen default: ASPP image pooling gives 1 value per channel at batch 1."""
    m = DeepLabV3Plus(num_classes=3, encoder_name="resnet18", bn_policy="train").train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m(torch.randn(1, 3, 64, 64))


def test_frozen_affine_updates_stats_not_affine() -> None:
    torch.manual_seed(0)
    m = DeepLabV2(num_classes=3, encoder_name="resnet18", bn_policy="frozen_affine").train()
    bns = [b for b in _bn_layers(m) if isinstance(b, nn.BatchNorm2d)]
    assert bns and len(bns) == len(_bn_layers(m))
    assert all(not p.requires_grad for b in bns for p in b.parameters())
    mean0 = bns[0].running_mean.clone()
    m(torch.randn(2, 3, 32, 32))["out"].sum().backward()
    assert not torch.equal(mean0, bns[0].running_mean)
    assert all(p.grad is None for b in bns for p in b.parameters())
    assert m.encoder.conv1.weight.grad is not None
    m.train()  # the setting survives mode switches
    assert all(not p.requires_grad for b in bns for p in b.parameters())


def test_train_and_sync_policies() -> None:
    m = DeepLabV2(num_classes=3, encoder_name="resnet18", bn_policy="frozen")
    apply_bn_policy(m, "train")  # re-applying turns frozen layers back into trainable BN
    bns = _bn_layers(m)
    assert bns and all(isinstance(b, nn.BatchNorm2d) for b in bns)
    assert all(p.requires_grad for b in bns for p in b.parameters())
    apply_bn_policy(m, "sync")
    assert all(isinstance(b, nn.SyncBatchNorm) for b in _bn_layers(m))
    lite = DeepLabV2(num_classes=3, encoder_name="tf_efficientnet_lite0", bn_policy="sync")
    assert _bn_layers(lite) and all(isinstance(b, nn.SyncBatchNorm) for b in _bn_layers(lite))
