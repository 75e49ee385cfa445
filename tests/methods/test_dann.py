"""DANN (seg_uda/methods/dann.py): the GRL schedule, the reversed domain gradient at the features, and the
domain classifier's parameters and feature width taken from the model."""
from __future__ import annotations

import math

import pytest
import torch

from method_stubs import FEAT, K, StubSegmenter
from seg_uda.methods import DANN, build_method, grl_schedule
from seg_uda.methods.losses import bce_with_logits


def test_grl_schedule_values() -> None:
    # lambda_p = 2/(1+exp(-10p)) - 1 = tanh(5p): p=0 -> 0; p=1 -> 2/(1+e^-10) - 1 = 0.9999092.
    assert grl_schedule(0.0) == 0.0
    assert grl_schedule(1.0) == pytest.approx(0.99991, abs=1e-5)
    assert grl_schedule(0.5) == pytest.approx(math.tanh(2.5))
    m = build_method("dann", num_classes=K, feat_channels=FEAT, grl_max=0.5)
    assert m.grl_coefficient(1.0) == pytest.approx(0.5 * grl_schedule(1.0))
    assert build_method("dann", num_classes=K, feat_channels=FEAT, grl_warmup=False).grl_coefficient(0.0) == 1.0
    with pytest.raises(ValueError, match="progress"):
        m.grl_coefficient(1.5)


@pytest.mark.parametrize("progress", [0.2, 1.0])
def test_dann_features_receive_reversed_domain_gradient(progress: float) -> None:
    torch.manual_seed(0)
    method = DANN(num_classes=K, feat_channels=FEAT, lambda_domain=0.3, grl_max=0.7, classifier_hidden=8)
    fs, ft = torch.randn(2, FEAT, 5, 5), torch.randn(2, FEAT, 5, 5)

    # With the GRL (the method's loss).
    fs_a, ft_a = fs.clone().requires_grad_(), ft.clone().requires_grad_()
    method.domain_loss(fs_a, ft_a, progress).backward()
    clf_grads = [p.grad.clone() for p in method.extra_parameters()]
    method.zero_grad(set_to_none=True)

    # Same loss without the GRL.
    fs_b, ft_b = fs.clone().requires_grad_(), ft.clone().requires_grad_()
    clf = method.domain_classifier
    plain = 0.3 * 0.5 * (bce_with_logits(clf(fs_b), 0.0) + bce_with_logits(clf(ft_b), 1.0))
    plain.backward()

    lam = 0.7 * grl_schedule(progress)
    assert fs_a.grad.abs().sum() > 0
    assert torch.allclose(fs_a.grad, -lam * fs_b.grad, atol=1e-7)
    assert torch.allclose(ft_a.grad, -lam * ft_b.grad, atol=1e-7)
    # The classifier itself descends the domain loss (no reversal on its own parameters).
    for g, p in zip(clf_grads, method.extra_parameters()):
        assert torch.allclose(g, p.grad, atol=1e-7)


def test_dann_parameters_and_feat_channels_from_model() -> None:
    model = StubSegmenter()
    method = build_method("dann", model=model, num_classes=K)
    assert method.feat_channels == FEAT
    assert method.discriminator_parameters() == []
    ids = {id(p) for p in method.extra_parameters()}
    assert ids == {id(p) for p in method.domain_classifier.parameters()} and ids
