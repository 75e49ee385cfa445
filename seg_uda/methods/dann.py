"""DANN (Ganin & Lempitsky, ICML 2015) for segmentation: a per-location domain classifier on the deepest
features, trained through a gradient-reversal layer in the same backward pass as the segmenter."""
from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn

from seg_uda.models.discriminator import DomainClassifier
from seg_uda.models.grl import GRLSchedule, grad_reverse, grl_schedule

from .base import METHODS, SOURCE_LABEL, TARGET_LABEL, Batch, UDAMethod
from .diagnostics import binary_accuracy
from .losses import bce_with_logits

__all__ = ["DANN", "grl_schedule"]


@METHODS.register("dann")
class DANN(UDAMethod):
    """Source cross-entropy plus a domain-adversarial loss on the model's "feat" output (source 0 / target 1).

    The domain classifier (`extra_parameters()`) trains with the segmenter optimizer in the same backward; the
    features get `-grl_coefficient(p)` times the domain-loss gradient (`seg_uda.models.grl`: grl_max, ramped).
    `lambda_domain=0.1` scales the gradient of both the classifier and, through the GRL, the features: it keeps the
    reversed gradient an order of magnitude below the segmentation one while the SGD-trained classifier still
    learns at head LR (ADVENT's 1e-3 would leave it untrained). To weaken only the feature side, lower `grl_max`.
    """

    needs_features = True
    derived_args = ("num_classes", "feat_channels")

    def __init__(self, num_classes: int, feat_channels: int, multi_level: bool = False, lambda_seg_main: float = 1.0,
                 lambda_seg_aux: float = 0.1, lambda_domain: float = 0.1, grl_max: float = 1.0,
                 grl_warmup: bool = True, grl_gamma: float = 10.0, classifier_hidden: int = 256) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        self.feat_channels = int(feat_channels)
        self.lambda_domain = float(lambda_domain)
        self.grl = GRLSchedule(grl_max, grl_warmup, grl_gamma)
        self.domain_classifier = DomainClassifier(self.feat_channels, hidden=classifier_hidden)

    def grl_coefficient(self, progress: float) -> float:
        """The reversal coefficient at this training progress (iteration / max_iters)."""
        return self.grl(self.check_progress(progress))

    def domain_loss(self, feat_src: Tensor, feat_tgt: Tensor, progress: float) -> Tensor:
        """Weighted domain BCE (mean of source->0 and target->1) on gradient-reversed features."""
        lambd = self.grl_coefficient(progress)
        for name, feat in (("source", feat_src), ("target", feat_tgt)):
            if feat.dim() != 4 or feat.shape[1] != self.feat_channels:
                raise ValueError(f"DANN: {name} 'feat' must be [N,{self.feat_channels},h,w] "
                                 f"(feat_channels={self.feat_channels}), got shape {tuple(feat.shape)}")
        d_src = self.domain_classifier(grad_reverse(feat_src, lambd))
        d_tgt = self.domain_classifier(grad_reverse(feat_tgt, lambd))
        self._last_domain_logits = (d_src.detach(), d_tgt.detach())  # for `diagnostics`
        bce = 0.5 * (bce_with_logits(d_src, SOURCE_LABEL) + bce_with_logits(d_tgt, TARGET_LABEL))
        return self.lambda_domain * bce

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        src_labels = self.batch_item(source, "label", "source")
        src_out = self.forward_model(model, source, "source")
        tgt_out = self.forward_model(model, target, "target")
        for name, out in (("source", src_out), ("target", tgt_out)):
            if out.get("feat") is None:
                raise ValueError(f"DANN: the model must return 'feat' features ({name} output keys: {sorted(out)})")
        losses = self.seg_losses(src_out, src_labels)
        losses["domain"] = self.domain_loss(src_out["feat"], tgt_out["feat"], progress)
        return losses, {}

    def extra_parameters(self) -> list[nn.Parameter]:
        return list(self.domain_classifier.parameters())

    def diagnostics(self, cache: Mapping[str, Tensor]) -> dict[str, object]:
        """The base diagnostics plus the domain classifier's accuracy on this step's source and target features."""
        out = super().diagnostics(cache)
        d = getattr(self, "_last_domain_logits", None)
        if d is not None:
            out["disc_acc_feat_src"] = binary_accuracy(d[0], SOURCE_LABEL)
            out["disc_acc_feat_tgt"] = binary_accuracy(d[1], TARGET_LABEL)
        return out

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, feat_channels={self.feat_channels}, lambda_domain={self.lambda_domain}, "
                f"{self.grl!r}")
