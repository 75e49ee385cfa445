"""ADVENT's own training iteration (``train_UDA.py: train_advent``), kept as the speed and loss reference.

Plain FP32, no autocast, and the paper code's order: source forward + backward, target forward + backward
(entropy / adversarial terms, discriminators frozen), then the discriminators' source and target halves with a
backward each, then every optimiser steps. Logits are upsampled to the label / input size as there.
`Trainer.run_step` computes the same losses (one generator backward, bf16 autocast by default); the
benchmark (``seg-uda-benchmark train``) times both and compares their losses. `ReferenceTrainer` is the
`Trainer` with this step (``seg-uda-train --reference``); it uses only the methods' public API.
"""
from __future__ import annotations

from typing import Any, Dict

import torch

from ..config import Config
from ..engine.trainer import Trainer
from ..methods.advent import AdvEnt
from ..methods.base import frozen
from ..methods.supervised import SourceOnly
from ..models.deeplabv2 import set_aspp_impl
from ..models.depthwise import set_depthwise_impl
from ..models.pointwise import set_pointwise_impl

__all__ = ["ReferenceTrainer", "reference_advent_step", "check_reference_method"]


def check_reference_method(method: Any) -> None:
    """Raise unless ``method`` is one the reference loop covers (source-only or the ADVENT family)."""
    if not isinstance(method, (AdvEnt, SourceOnly)):
        raise TypeError(f"the reference loop covers source-only and ADVENT methods, not {type(method).__name__}")


def _backward(loss: torch.Tensor, values: Dict[str, float], terms: Dict[str, torch.Tensor]) -> None:
    for k, v in terms.items():
        values[k] = float(v.detach())
    loss.backward()


def reference_advent_step(trainer: Any, source: Dict[str, torch.Tensor], target: Dict[str, torch.Tensor]
                          ) -> Dict[str, float]:
    """One ADVENT-style iteration on ``trainer``'s model, method and optimisers; returns the loss values.

    ``trainer.method`` must be a source-only or ADVENT-family method (MinEnt / AdvEnt / AdvEnt+MinEnt).
    """
    method, model = trainer.method, trainer.model
    check_reference_method(method)
    if trainer.amp != "none":
        raise ValueError("the reference loop is FP32: build its trainer with schedule.amp=none")
    it = trainer.iteration
    trainer.scheduler.set_iteration(it)
    model.train()
    method.train()
    trainer.optimizer.zero_grad(set_to_none=True)
    if trainer.d_optimizer is not None:
        trainer.d_optimizer.zero_grad(set_to_none=True)
    values: Dict[str, float] = {}
    discs = getattr(method, "discriminators", None)

    with frozen(discs):  # "UDA training: only train segnet", as the paper code
        src_out = model(source["image"])
        terms = method.seg_losses(src_out, source["label"])
        _backward(sum(terms.values()), values, terms)
        cache: Dict[str, torch.Tensor] = {}
        if isinstance(method, AdvEnt):
            tgt_out = model(target["image"])
            terms, cache = method.target_terms(tgt_out, target["image"].shape[-2:])
            _backward(sum(terms.values()), values, terms)

    if method.has_discriminators:  # the method's own D losses; the paper code backpropagates each domain's half alone
        src_maps = method.source_maps(src_out, source["image"].shape[-2:])  # detached maps, no graph
        d_terms = method.discriminator_step({**src_maps, **cache})
        for domain in ("src", "tgt"):
            terms = {k: v for k, v in d_terms.items() if k.endswith(f"_{domain}")}
            _backward(sum(terms.values()), values, terms)

    for opt in (trainer.optimizer, trainer.d_optimizer):
        if opt is not None:
            trainer.clip_and_step(opt)  # the trainer's clipping and step (no scaler in FP32)
    return values


class ReferenceTrainer(Trainer):
    """`Trainer` whose iteration is `reference_advent_step`, with the paper code's per-branch classifier
    convolutions, 1x1 and depthwise convolutions: one process, FP32, NCHW; source-only and the ADVENT family only."""

    def __init__(self, cfg: Config, **kwargs: Any) -> None:
        if cfg.schedule.amp != "none" or cfg.model.channels_last:
            raise ValueError("the reference loop is ADVENT's single-process FP32 loop: run it in one process with "
                             "schedule.amp=none and model.channels_last=false (tools/train.py --reference sets both)")
        super().__init__(cfg, **kwargs)
        if self.world_size > 1:
            raise ValueError("the reference loop is ADVENT's single-process loop: run it without torchrun")
        check_reference_method(self.method)
        set_aspp_impl(self.model, "conv")
        set_pointwise_impl(self.model, "conv")
        set_depthwise_impl(self.model, "conv")

    def run_step(self) -> Dict[str, float]:
        source, target = self.next_batches()
        return reference_advent_step(self, source, target)
