"""Fixtures shared by the model tests."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn


def _forward_backward(module: nn.Module, x: torch.Tensor, grad: torch.Tensor):
    """(output, input gradient, parameter gradients) of ``module`` at ``x`` for the output gradient ``grad``."""
    x = x.detach().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = module(x)
    y.backward(grad)
    return y.detach(), x.grad, [p.grad for p in module.parameters()]


@pytest.fixture
def forward_backward() -> Callable:
    """One forward and backward of a module: compares a convolution implementation with ``nn.Conv2d``."""
    return _forward_backward
