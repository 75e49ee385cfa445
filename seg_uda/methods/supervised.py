"""Supervised baselines: `source_only` (lower bound, no adaptation) and `oracle` (upper bound, target labels)."""
from __future__ import annotations

from torch import Tensor, nn

from .base import METHODS, Batch, UDAMethod

__all__ = ["SourceOnly", "Oracle"]


class _Supervised(UDAMethod):
    """Cross-entropy on the labelled batches of one domain (`domain`); the other domain's batches are ignored."""

    domain = "source"

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        batch = source if self.domain == "source" else target
        labels = self.batch_item(batch, "label", self.domain)  # check before the (expensive) forward
        out = self.forward_model(model, batch, self.domain)
        return self.seg_losses(out, labels), {}


@METHODS.register("source_only")
class SourceOnly(_Supervised):
    """Cross-entropy on labelled source images only; target batches are ignored (pass None)."""

    domain = "source"
    uses_source = True
    uses_target = False
    uses_target_labels = False


@METHODS.register("oracle")
class Oracle(_Supervised):
    """Cross-entropy on labelled *target* images (the fully supervised upper bound); source batches are ignored."""

    domain = "target"
    uses_source = False
    uses_target = True
    uses_target_labels = True
