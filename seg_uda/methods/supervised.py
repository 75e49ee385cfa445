"""Supervised baselines: `source_only` (lower bound, no adaptation) and `oracle` (upper bound, target labels)."""
from __future__ import annotations

from torch import Tensor, nn

from .base import METHODS, Batch, UDAMethod

__all__ = ["SourceOnly", "Oracle"]


@METHODS.register("source_only")
class SourceOnly(UDAMethod):
    """Cross-entropy on labelled source images only; target batches are ignored (pass None)."""

    uses_source = True
    uses_target = False
    uses_target_labels = False

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
    ) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        out = self.forward_model(model, source, "source")
        return self.seg_losses(out, self.batch_item(source, "label", "source")), {}


@METHODS.register("oracle")
class Oracle(UDAMethod):
    """Cross-entropy on labelled *target* images (the fully supervised upper bound); source batches are ignored."""

    uses_source = False
    uses_target = True
    uses_target_labels = True

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
    ) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        labels = self.batch_item(target, "label", "target")  # check before the (expensive) forward
        out = self.forward_model(model, target, "target")
        return self.seg_losses(out, labels), {}

