"""Gradient reversal layer (Ganin & Lempitsky, DANN): identity forward, gradient times -lambda backward.

One naming scheme for every method: ``grl_max`` is the largest reversal coefficient, ``grl_warmup`` ramps it in with
DANN's schedule (steepness ``grl_gamma``), and ``GRLSchedule(progress)`` is the coefficient lambda at that point of
training, the value handed to `grad_reverse` (and to a model's ``forward(x, grl_lambda=lambda)``).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import torch
from torch import nn


class GradientReversalFunction(torch.autograd.Function):
    """Autograd function: returns its input unchanged; backward multiplies the gradient by ``-lambd``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambd: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Tuple[Optional[torch.Tensor], None]:  # type: ignore[override]
        return grad_output.neg() * ctx.lambd, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Identity on ``x`` whose backward pass multiplies the incoming gradient by ``-lambd``."""
    return GradientReversalFunction.apply(x, lambd)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; ``lambd`` may be changed during training (e.g. DANN's schedule)."""

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"


def grl_schedule(progress: float, gamma: float = 10.0) -> float:
    """DANN's ramp lambda_p = 2 / (1 + exp(-gamma * p)) - 1: 0 at p=0, ~1 at p=1."""
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


class GRLSchedule:
    """The reversal coefficient over training: ``grl_max * grl_schedule(p, grl_gamma)``; ``grl_max`` without warm-up."""

    def __init__(self, grl_max: float = 1.0, grl_warmup: bool = True, grl_gamma: float = 10.0) -> None:
        if float(grl_max) < 0:
            raise ValueError(f"GRLSchedule: grl_max must be >= 0, got {grl_max}")
        self.grl_max, self.grl_warmup, self.grl_gamma = float(grl_max), bool(grl_warmup), float(grl_gamma)

    def __call__(self, progress: float) -> float:
        return self.grl_max * (grl_schedule(progress, self.grl_gamma) if self.grl_warmup else 1.0)

    def __repr__(self) -> str:
        return f"grl_max={self.grl_max}, grl_warmup={self.grl_warmup}, grl_gamma={self.grl_gamma}"
