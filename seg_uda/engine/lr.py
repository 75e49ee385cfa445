"""Poly learning-rate schedule with optional linear warmup (ADVENT: lr * (1 - it/max)^0.9)."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import torch


def poly_lr_factor(iteration: int, max_iters: int, power: float = 0.9,
                   warmup_iters: int = 0, warmup_ratio: float = 0.1) -> float:
    """Multiplier of the base LR at `iteration` (0-based); `max_iters` is the decay horizon."""
    factor = (1.0 - min(iteration, max_iters) / max_iters) ** power
    if warmup_iters > 0 and iteration < warmup_iters:
        alpha = iteration / warmup_iters
        factor *= warmup_ratio + (1.0 - warmup_ratio) * alpha
    return factor


class PolyLR:
    """Sets every param group's lr (of one optimizer or several) to its `initial_lr` times the poly factor.

    Stateless apart from the groups, so a resumed run gets exactly the uninterrupted run's rates.
    """

    def __init__(self, optimizer: Union[torch.optim.Optimizer, Sequence[torch.optim.Optimizer]], max_iters: int,
                 power: float = 0.9, warmup_iters: int = 0, warmup_ratio: float = 0.1) -> None:
        self.optimizers = [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else list(optimizer)
        self.optimizer = self.optimizers[0]
        self.max_iters = max_iters
        self.power = power
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        for g in self._groups():
            g.setdefault("initial_lr", g["lr"])

    def _groups(self) -> List[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def set_iteration(self, iteration: int) -> None:
        f = poly_lr_factor(iteration, self.max_iters, self.power, self.warmup_iters, self.warmup_ratio)
        for g in self._groups():
            # a group restored from a checkpoint written without this schedule (constant lr) has no initial_lr
            g["lr"] = g.setdefault("initial_lr", g["lr"]) * f

    def get_lr(self) -> List[float]:
        return [g["lr"] for g in self._groups()]


def build_poly_lr(cfg: Any, optimizer: torch.optim.Optimizer,
                  d_optimizer: Optional[torch.optim.Optimizer] = None) -> PolyLR:
    """The trainer's schedule: poly decay over ``schedule.poly_horizon`` (null: ``max_iters``) for the segmenter,
    and for the discriminators too when ``optim.disc_poly`` (ADVENT's adjust_learning_rate_discriminator)."""
    s = cfg.schedule
    optimizers = [optimizer] + ([d_optimizer] if d_optimizer is not None and cfg.optim.disc_poly else [])
    return PolyLR(optimizers, s.poly_horizon or s.max_iters, s.poly_power, s.warmup_iters, s.warmup_ratio)
