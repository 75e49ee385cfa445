"""Gradient reversal: identity forward, gradient multiplied by exactly -lambda backward."""
import pytest
import torch
from torch import nn

import math

from seg_uda.models.grl import GradientReversal, GRLSchedule, grad_reverse, grl_schedule


def _grad(x: torch.Tensor, f) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    f(x).backward()
    return x.grad


def test_forward_is_identity() -> None:
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(grad_reverse(x, 0.7), x)
    assert torch.equal(GradientReversal(2.0)(x), x)


@pytest.mark.parametrize("lambd", [1.0, 0.5, 0.3, 2.0, 0.0])
def test_gradient_is_flipped_and_scaled(lambd: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    w = torch.randn(3, 4)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return (w * t.pow(2)).sum()

    g_ref = _grad(x, loss)
    g_rev = _grad(x, lambda t: loss(grad_reverse(t, lambd)))
    assert torch.allclose(g_rev, -lambd * g_ref, rtol=0, atol=1e-7)
    if lambd in (1.0, 0.5, 2.0):  # powers of two: the scaling is exact in floating point
        assert torch.equal(g_rev, -lambd * g_ref)


def test_module_lambda_is_settable() -> None:
    x = torch.randn(5)
    grl = GradientReversal()
    assert grl.lambd == 1.0
    assert torch.equal(_grad(x, lambda t: grl(t).sum()), -torch.ones(5))
    grl.lambd = 0.25
    assert torch.equal(_grad(x, lambda t: grl(t).sum()), torch.full((5,), -0.25))
    assert "lambd=0.25" in repr(grl)


def test_dann_setup_only_reverses_the_feature_extractor() -> None:
    """Params after the GRL (discriminator) get normal gradients, params before it (features) reversed ones."""
    torch.manual_seed(0)
    feat, disc = nn.Linear(4, 6), nn.Linear(6, 1)
    x = torch.randn(8, 4)

    def grads(use_grl: bool):
        feat.zero_grad()
        disc.zero_grad()
        h = feat(x)
        disc(grad_reverse(h, 1.0) if use_grl else h).pow(2).mean().backward()
        return feat.weight.grad.clone(), disc.weight.grad.clone()

    f_ref, d_ref = grads(False)
    f_rev, d_rev = grads(True)
    assert torch.equal(d_rev, d_ref)
    assert torch.equal(f_rev, -f_ref)


def test_grl_schedule_is_one_naming_scheme() -> None:
    """grl_max = the largest coefficient, grl_warmup = DANN's ramp (steepness grl_gamma) on or off."""
    assert grl_schedule(0.0) == 0.0 and grl_schedule(0.5) == pytest.approx(math.tanh(2.5))
    ramped = GRLSchedule(grl_max=0.3)
    assert ramped(0.0) == 0.0 and ramped(1.0) == pytest.approx(0.3 * (2 / (1 + math.exp(-10)) - 1))
    assert GRLSchedule(grl_max=0.3, grl_warmup=False)(0.0) == 0.3
    assert GRLSchedule(grl_gamma=2.0)(0.5) == pytest.approx(math.tanh(0.5))
    assert "grl_max=0.3" in repr(ramped)
    with pytest.raises(ValueError, match="grl_max"):
        GRLSchedule(grl_max=-1.0)
