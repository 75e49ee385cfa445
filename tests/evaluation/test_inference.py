"""Tests for whole/slide inference, flip and multi-scale averaging, and weighted ensembles (tiny stub models)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from seg_uda.evaluation import ensemble_predict, predict_logits, predict_probs
from seg_uda.evaluation.inference import _window_starts

K = 4


class PointwiseSeg(nn.Module):
    """1x1 conv at input resolution: translation- and flip-equivariant."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Conv2d(3, K, 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.head(x)}


class AsymmetricSeg(nn.Module):
    """Stride-2 conv with a left/right asymmetric kernel: neither flip-equivariant nor full resolution."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.head = nn.Conv2d(3, K, (1, 3), stride=2, padding=(0, 1))

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.head(x), "aux": None}


def _image(h: int = 20, w: int = 30) -> torch.Tensor:
    torch.manual_seed(123)
    return torch.randn(2, 3, h, w)


def _reference(model: nn.Module, x: torch.Tensor, out_size: tuple) -> torch.Tensor:
    """Softmax of the logits upsampled bilinearly with align_corners=True (ADVENT's evaluation)."""
    logits = F.interpolate(model(x)["out"], size=out_size, mode="bilinear", align_corners=True)
    return torch.softmax(logits, dim=1)


def test_whole_matches_reference_and_out_size() -> None:
    model, x = AsymmetricSeg().eval(), _image()
    probs = predict_probs(model, x, out_size=(37, 53))
    assert probs.shape == (2, K, 37, 53)
    torch.testing.assert_close(probs, _reference(model, x, (37, 53)))
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 37, 53))


@pytest.mark.parametrize("crop,stride", [((12, 16), (8, 10)), ((20, 30), (5, 5)), ((64, 64), None), ((7, 9), (7, 9))])
def test_slide_equals_whole_for_translation_equivariant_model(crop, stride) -> None:
    model, x = PointwiseSeg().eval(), _image()
    whole = predict_probs(model, x, out_size=(40, 60), mode="whole")
    slide = predict_probs(model, x, out_size=(40, 60), mode="slide", crop_size=crop, stride=stride)
    torch.testing.assert_close(slide, whole, atol=1e-6, rtol=1e-5)


def test_window_starts_cover_every_pixel() -> None:
    for length, crop, stride in [(30, 16, 10), (20, 12, 8), (9, 9, 3), (31, 7, 7), (5, 8, 4)]:
        covered = set()
        starts = _window_starts(length, min(crop, length), stride)
        for s in starts:
            covered.update(range(s, s + min(crop, length)))
        assert covered == set(range(length)), (length, crop, stride, starts)
        assert max(starts) + min(crop, length) == length


def test_slide_with_downsampling_model_has_out_size() -> None:
    probs = predict_probs(AsymmetricSeg().eval(), _image(), out_size=(25, 31), mode="slide", crop_size=10, stride=6)
    assert probs.shape == (2, K, 25, 31)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 25, 31))


def test_flip_leaves_flip_equivariant_model_unchanged() -> None:
    model, x = PointwiseSeg().eval(), _image()
    plain = predict_probs(model, x, out_size=(40, 60))
    flipped = predict_probs(model, x, out_size=(40, 60), flip=True)
    torch.testing.assert_close(flipped, plain, atol=1e-6, rtol=1e-5)


def test_flip_averages_the_unflipped_and_flipped_passes() -> None:
    model, x = AsymmetricSeg().eval(), _image()
    p0 = _reference(model, x, (20, 30))
    p1 = torch.flip(_reference(model, torch.flip(x, dims=[3]), (20, 30)), dims=[3])
    assert not torch.allclose(p0, p1)  # the stub really is not flip-equivariant
    torch.testing.assert_close(predict_probs(model, x, out_size=(20, 30), flip=True), (p0 + p1) / 2)


def test_multiscale_averages_rescaled_passes() -> None:
    model, x = AsymmetricSeg().eval(), _image()
    half = F.interpolate(x, size=(10, 15), mode="bilinear", align_corners=False)
    expected = (_reference(model, x, (20, 30)) + _reference(model, half, (20, 30))) / 2
    got = predict_probs(model, x, out_size=(20, 30), scales=(1.0, 0.5))
    torch.testing.assert_close(got, expected)


def test_predict_logits_is_log_of_probs() -> None:
    model, x = AsymmetricSeg().eval(), _image()
    logits = predict_logits(model, x, (20, 30), flip=True)
    torch.testing.assert_close(torch.softmax(logits, 1), predict_probs(model, x, (20, 30), flip=True))
    ref = F.interpolate(model(x)["out"], size=(20, 30), mode="bilinear", align_corners=True)
    torch.testing.assert_close(predict_logits(model, x, (20, 30)), torch.log_softmax(ref, 1), atol=1e-5, rtol=1e-5)


def test_ensemble_weights() -> None:
    a, b, x = PointwiseSeg(0).eval(), AsymmetricSeg().eval(), _image()
    pa, pb = predict_probs(a, x, (20, 30)), predict_probs(b, x, (20, 30))
    torch.testing.assert_close(ensemble_predict([a, b], (1, 0), x, (20, 30)), pa)
    torch.testing.assert_close(ensemble_predict([a, b], (0.5, 0.5), x, (20, 30)), (pa + pb) / 2)
    torch.testing.assert_close(ensemble_predict([a, b], (3, 1), x, (20, 30)), 0.75 * pa + 0.25 * pb)  # normalised
    torch.testing.assert_close(ensemble_predict([a, b], None, x, (20, 30)), (pa + pb) / 2)
    # logit fusion = softmax of the weighted sum of upsampled logits (ADVENT's eval_UDA.py)
    za = F.interpolate(a(x)["out"], size=(20, 30), mode="bilinear", align_corners=True)
    zb = F.interpolate(b(x)["out"], size=(20, 30), mode="bilinear", align_corners=True)
    fused = ensemble_predict([a, b], (0.5, 0.5), x, (20, 30), fuse="logit")
    torch.testing.assert_close(fused, torch.softmax(0.5 * za + 0.5 * zb, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("weights,match", [((1.0,), "2 models"), ((1.0, -0.5), "non-negative"), ((0, 0), "all be zero"),
                                           ((1.0, float("nan")), "finite")])
def test_ensemble_rejects_bad_weights(weights, match) -> None:
    with pytest.raises(ValueError, match=match):
        ensemble_predict([PointwiseSeg(), PointwiseSeg(1)], weights, _image(), (20, 30))


def test_bad_model_output_and_arguments() -> None:
    x = _image()
    with pytest.raises(TypeError, match="'out'"):
        predict_probs(lambda t: t, x, (20, 30))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_classes=5"):
        predict_probs(PointwiseSeg(), x, (20, 30), num_classes=5)
    with pytest.raises(ValueError, match="crop_size"):
        predict_probs(PointwiseSeg(), x, (20, 30), mode="slide")
    with pytest.raises(ValueError, match="mode"):
        predict_probs(PointwiseSeg(), x, (20, 30), mode="tiles")


def test_run_evaluation_records_no_graph_and_raises_missing_labels_error() -> None:
    from seg_uda.evaluation.runner import MissingLabelsError, SegmentationAccumulator, run_evaluation

    class Probe(SegmentationAccumulator):
        grad_modes: list = []

        def update(self, batch, probs):
            self.grad_modes.append((torch.is_grad_enabled(), probs.requires_grad))
            super().update(batch, probs)

    g = torch.Generator().manual_seed(0)
    data = [{"image": _image()[0], "label": torch.randint(0, K, (20, 30), generator=g), "name": f"im{i}"}
            for i in range(3)]
    acc = Probe(K)
    run_evaluation([PointwiseSeg()], data, [acc])
    assert acc.grad_modes == [(False, False)] * 3  # evaluation builds no autograd graph
    assert int(acc.confusion.mat.sum()) == 3 * 20 * 30
    with pytest.raises(MissingLabelsError, match="no labels"):
        run_evaluation([PointwiseSeg()], [{"image": d["image"], "name": d["name"]} for d in data], [Probe(K)])


def test_adabn_replaces_running_statistics_by_the_target_average():
    """AdaBN (seg_uda/evaluation/adabn.py): a BatchNorm layer's running mean / variance become the plain average of
    the per-batch statistics of the given images; weights and the model's mode are untouched; a model whose
    BatchNorm is frozen (no running statistics) is refused with the policy named."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    from seg_uda.evaluation.adabn import reestimate_bn_statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(2)).eval()
    model[0].running_mean.fill_(5.0)
    images = [torch.randn(2, 3, 4) * (1 + i) + i for i in range(6)]
    dataset = [{"image": x, "name": str(i)} for i, x in enumerate(images)]
    weight = model[0].weight.clone()
    assert reestimate_bn_statistics(model, dataset, max_images=4, batch_size=2) == 4
    batches = [torch.stack(images[0:2]), torch.stack(images[2:4])]
    mean = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    var = torch.stack([b.var((0, 2, 3), unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(model[0].running_mean, mean, atol=1e-6)
    assert torch.allclose(model[0].running_var, var, atol=1e-6)
    assert torch.equal(model[0].weight, weight) and not model.training and model[0].momentum == 0.1
    with pytest.raises(ValueError, match="frozen"):
        reestimate_bn_statistics(nn.Sequential(FrozenBatchNorm2d(2)), dataset)
