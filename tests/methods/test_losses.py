"""Loss formulas of seg_uda.methods.losses checked against hand-computed values (ADVENT's definitions)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seg_uda.methods.losses import (
    bce_with_logits, class_prior_loss, entropy_loss, entropy_map, seg_loss, upsample_logits,
)


def _prob(*pixels: list[float]) -> torch.Tensor:
    """[1,C,1,P] probability tensor from P per-pixel class distributions."""
    return torch.tensor(pixels, dtype=torch.float32).t().reshape(1, len(pixels[0]), 1, len(pixels))


# ------------------------------------------------------------------ entropy_map
def test_entropy_map_two_classes_uniform_and_certain() -> None:
    # [0.5, 0.5]: -0.5 * log2(0.5) / log2(2) = 0.5 / 1 = 0.5 for each class.
    # [1, 0]:     -1 * log2(1) = 0 and -0 * log2(1e-30) = 0.
    imap = entropy_map(_prob([0.5, 0.5], [1.0, 0.0]))
    assert imap.shape == (1, 2, 1, 2)
    assert torch.allclose(imap[0, :, 0, 0], torch.tensor([0.5, 0.5]))
    assert torch.equal(imap[0, :, 0, 1], torch.zeros(2))


def test_entropy_map_three_classes_worked_example() -> None:
    # p = [1/2, 1/4, 1/4]: -p*log2(p) = [1/2*1, 1/4*2, 1/4*2] = [0.5, 0.5, 0.5] bits;
    # divided by log2(3) = 1.5849625 -> 0.5 / 1.5849625 = 0.3154649 per class.
    imap = entropy_map(_prob([0.5, 0.25, 0.25]))
    assert torch.allclose(imap.flatten(), torch.full((3,), 0.3154649), atol=1e-6)


def test_entropy_map_finite_in_half_precision() -> None:
    # 1e-30 underflows to 0 in float16; a certain pixel must still give 0, not NaN (0 * log2(0)).
    imap = entropy_map(_prob([1.0, 0.0]).half())
    assert torch.isfinite(imap).all() and torch.equal(imap.flatten(), torch.zeros(2))


# ------------------------------------------------------------------ entropy_loss
def test_entropy_loss_two_classes() -> None:
    # Normalised entropies: [0.5, 0.5] -> 1, [1, 0] -> 0; the loss is their mean over N*H*W = 2 pixels = 0.5.
    assert entropy_loss(_prob([0.5, 0.5])).item() == pytest.approx(1.0)
    assert entropy_loss(_prob([1.0, 0.0])).item() == pytest.approx(0.0, abs=1e-12)
    assert entropy_loss(_prob([0.5, 0.5], [1.0, 0.0])).item() == pytest.approx(0.5)


def test_entropy_loss_three_classes_worked_example() -> None:
    # [1/2, 1/4, 1/4]: H = 0.5 + 0.5 + 0.5 = 1.5 bits -> 1.5 / log2(3) = 0.9463946.
    # [1/3, 1/3, 1/3]: H = log2(3) -> 1.  Batch of N=2 images, 1 pixel each -> mean = (0.9463946 + 1) / 2.
    a = _prob([0.5, 0.25, 0.25])
    b = _prob([1 / 3, 1 / 3, 1 / 3])
    assert entropy_loss(a).item() == pytest.approx(0.9463946, abs=1e-6)
    assert entropy_loss(b).item() == pytest.approx(1.0, abs=1e-6)
    assert entropy_loss(torch.cat([a, b])).item() == pytest.approx((0.9463946 + 1.0) / 2, abs=1e-6)


def test_entropy_loss_is_mean_over_pixels_of_summed_entropy_map() -> None:
    prob = torch.softmax(torch.randn(2, 4, 3, 5), dim=1)
    assert entropy_loss(prob).item() == pytest.approx(entropy_map(prob).sum(1).mean().item(), rel=1e-5)


@pytest.mark.parametrize("fn", [entropy_map, entropy_loss])
def test_entropy_rejects_bad_shapes(fn) -> None:
    with pytest.raises(ValueError, match=r"\[N,C,H,W\]"):
        fn(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="C=1"):
        fn(torch.ones(1, 1, 2, 2))


# ------------------------------------------------------------------ seg_loss / upsampling
def test_upsample_uses_align_corners_true() -> None:
    # Width 2 -> 4 with align_corners=True samples at x = 0, 1/3, 2/3, 1: [0, 2/3, 4/3, 2]
    # (align_corners=False would give [0, 0.5, 1.5, 2]).
    logits = torch.tensor([0.0, 2.0]).reshape(1, 1, 1, 2)
    up = upsample_logits(logits, (1, 4))
    assert torch.allclose(up.flatten(), torch.tensor([0.0, 2 / 3, 4 / 3, 2.0]))


def test_upsample_returns_nchw_for_channels_last_logits() -> None:
    # channels_last logits (the bf16 ResNet-101 configs) are upsampled in NCHW, so that the softmax and the
    # entropy maps that follow run on contiguous tensors instead of copying ~10 MB each; values as from NCHW.
    logits = torch.randn(2, 19, 5, 7)
    cl = logits.contiguous(memory_format=torch.channels_last)
    up = upsample_logits(cl, (20, 28))
    assert up.is_contiguous()
    assert torch.equal(up, upsample_logits(logits, (20, 28)))


def test_seg_loss_upsamples_and_ignores_255() -> None:
    # A 1x1 logit map [log 3, 0] is constant after upsampling to 2x2: softmax = [3/4, 1/4].
    # Labels [[0, 1], [255, 255]]: CE = -log(3/4) and -log(1/4); ignored pixels excluded -> mean of the two.
    logits = torch.tensor([math.log(3.0), 0.0]).reshape(1, 2, 1, 1).requires_grad_()
    labels = torch.tensor([[[0, 1], [255, 255]]])
    loss = seg_loss(logits, labels)
    expected = (math.log(4 / 3) + math.log(4.0)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_seg_loss_matches_cross_entropy_at_label_size() -> None:
    logits = torch.randn(2, 5, 6, 7)
    labels = torch.randint(0, 5, (2, 6, 7))
    labels[0, :2] = 255
    ref = F.cross_entropy(logits, labels, ignore_index=255)
    assert seg_loss(logits, labels).item() == pytest.approx(ref.item(), rel=1e-5)


def test_seg_loss_all_ignored_is_zero_with_grad() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = seg_loss(logits, torch.full((1, 4, 4), 255, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_seg_loss_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        seg_loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="same N"):
        seg_loss(torch.randn(2, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


# ------------------------------------------------------------------ bce_with_logits
def test_bce_with_logits_constant_target() -> None:
    # logit 0: sigmoid = 1/2 -> log 2 for either label.  logit log 3: sigmoid = 3/4 ->
    # label 1: -log(3/4) = log(4/3);  label 0: -log(1 - 3/4) = log 4.
    zero = torch.zeros(1, 1, 2, 2)
    assert bce_with_logits(zero, 0.0).item() == pytest.approx(math.log(2.0))
    assert bce_with_logits(zero, 1.0).item() == pytest.approx(math.log(2.0))
    l3 = torch.full((2, 1, 3, 3), math.log(3.0))
    assert bce_with_logits(l3, 1.0).item() == pytest.approx(math.log(4 / 3), rel=1e-6)
    assert bce_with_logits(l3, 0.0).item() == pytest.approx(math.log(4.0), rel=1e-6)
    with pytest.raises(ValueError, match="domain_label"):
        bce_with_logits(zero, 2.0)


# ------------------------------------------------------------------ class_prior_loss (ADVENT Sec. 3.3)
def test_class_prior_loss_worked_example() -> None:
    # image 1: pixels [0.8, 0.1, 0.1] and [0.6, 0.3, 0.1] -> mean [0.7, 0.2, 0.1]; mu * prior = 0.5 * [0.2, 0.5, 0.3]
    # = [0.10, 0.25, 0.15] -> hinge [0, 0.05, 0.05] = 0.10.  image 2: all class 0 -> mean [1, 0, 0] -> [0, 0.25, 0.15]
    # = 0.40.  Mean over the two images: 0.25.
    one = _prob([0.8, 0.1, 0.1], [0.6, 0.3, 0.1])
    two = _prob([1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    prior = torch.tensor([0.2, 0.5, 0.3])
    assert class_prior_loss(one, prior, 0.5).item() == pytest.approx(0.10, abs=1e-7)
    assert class_prior_loss(torch.cat([one, two]), prior, 0.5).item() == pytest.approx(0.25, abs=1e-7)
    assert class_prior_loss(one, prior, 0.0).item() == 0.0  # mu = 0: no constraint


def test_class_prior_loss_gradient_reaches_only_the_classes_below_their_prior() -> None:
    prob = _prob([0.8, 0.1, 0.1], [0.6, 0.3, 0.1]).requires_grad_(True)
    class_prior_loss(prob, torch.tensor([0.2, 0.5, 0.3]), 0.5).backward()
    # d/dp of -mean_hw p_c for the two violating classes (1, 2): -1/2 per pixel; class 0 is above its prior: 0
    expected = torch.tensor([[0.0, 0.0], [-0.5, -0.5], [-0.5, -0.5]]).reshape(1, 3, 1, 2)
    assert torch.equal(prob.grad, expected)


def test_class_prior_loss_rejects_a_prior_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"prior must have shape \[C=3\]"):
        class_prior_loss(_prob([0.5, 0.25, 0.25]), torch.tensor([0.5, 0.5]), 0.5)
