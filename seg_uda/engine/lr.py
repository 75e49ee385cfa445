"""Poly learning-rate schedule with optional linear warmup (ADVENT: lr * (1 - it/max)^0.9)."""
from __future__ import annotations

from typing import List

import torch


def poly_lr_factor(iteration: int, max_iters: int, power: float = 0.9,
                   warmup_iters: int = 0, warmup_ratio: float = 0.1) -> float:
    """Multiplier of the base LR at `iteration` (0-based)."""
    factor = (1.0 - min(iteration, max_iters) / max_iters) ** power
    if warmup_iters > 0 and iteration < warmup_iters:
        alpha = iteration / warmup_iters
        factor *= warmup_ratio + (1.0 - warmup_ratio) * alpha
    return factor


class PolyLR:
    """Sets every param group's lr to its `initial_lr` times the poly factor; stateless apart from the groups."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_iters: int, power: float = 0.9,
                 warmup_iters: int = 0, warmup_ratio: float = 0.1) -> None:
        self.optimizer = optimizer
        self.max_iters = max_iters
        self.power = power
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])

    def set_iteration(self, iteration: int) -> None:
        f = poly_lr_factor(iteration, self.max_iters, self.power, self.warmup_iters, self.warmup_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f

    def get_lr(self) -> List[float]:
        return [g["lr"] for g in self.optimizer.param_groups]
