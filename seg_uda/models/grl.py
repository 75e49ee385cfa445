"""Gradient reversal layer (Ganin & Lempitsky, DANN): identity forward, gradient times -lambda backward."""
from __future__ import annotations

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
