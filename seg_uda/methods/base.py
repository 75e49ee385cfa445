"""The `UDAMethod` interface every adaptation method implements, plus the `METHODS` registry.

A method only computes losses; the trainer owns the loop, optimizers, precision, DDP and checkpoints.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from torch import Tensor, nn

from seg_uda.data.openset import protocol_from_config
from seg_uda.registry import Registry

from .diagnostics import class_histogram, mean_entropy, total_variation
from .losses import seg_loss, upsample_logits

__all__ = ["METHODS", "UDAMethod", "Batch", "frozen", "SOURCE_LABEL", "TARGET_LABEL"]

METHODS = Registry("method")

Batch = Mapping[str, Tensor]  # {"image": float [N,3,H,W], "label": int64 [N,H,W] (255 = ignore), ...}

SOURCE_LABEL = 0.0  # discriminator / domain-classifier target for source inputs (ADVENT convention)
TARGET_LABEL = 1.0  # ... and for target inputs


@contextlib.contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Temporarily set `requires_grad=False` on the modules' parameters, restoring each flag afterwards.

    Ops run inside the block record no gradient path to these parameters, so a later backward of
    their outputs leaves the parameters' `.grad` untouched (gradients still flow to the inputs).
    """
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class UDAMethod(nn.Module):
    """Computes one method's losses for a step; owns the method's own modules (discriminators, domain classifiers).

    A method is one file in this package (imported automatically): a subclass registered in `METHODS` that
    implements `generator_step` (adversarial ones also `discriminator_step` / `discriminator_parameters`) and
    declares below what it needs. The engine reads only these declarations and `from_config`, never the
    constructor's signature. All returned losses are already weighted: the trainer sums them.
    """

    # ---- declarations (class attributes), read by config validation, the builders and the trainer
    uses_source: bool = True  # labelled source batches
    uses_target: bool = True  # target images
    uses_target_labels: bool = False  # target labels too (the oracle)
    unknown_head: bool = False  # a (K+1)-way segmenter whose last output is *unknown* (open-set)
    needs_features: bool = False  # the model's "feat" output; `from_config` passes model.feat_channels
    has_discriminators: bool = False  # discriminators with their own (Adam) optimizer; an instance may refine it
    derived_args: tuple[str, ...] = ("num_classes",)  # constructor args `from_config` fills in; not config keys

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
    ) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"{type(self).__name__}: num_classes must be >= 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.multi_level = bool(multi_level)
        self.lambda_seg_main = float(lambda_seg_main)
        self.lambda_seg_aux = float(lambda_seg_aux)
        self._last_seen: dict[str, tuple[Tensor, Tensor | None, tuple[int, int]]] = {}  # for `diagnostics`

    @classmethod
    def from_config(cls, cfg: Any, model: nn.Module | None = None) -> dict[str, Any]:
        """Constructor kwargs (detectron2's pattern): the config's method keys, K known classes, `model_args`."""
        protocol = protocol_from_config(cfg)  # K = data.num_classes minus the open-set private classes
        num_classes = cfg.data.num_classes if protocol is None else protocol.num_known
        return {**cls.model_args(model), **cfg.method.args, "num_classes": num_classes}

    @classmethod
    def model_args(cls, model: nn.Module | None) -> dict[str, Any]:
        """What the declarations take from the model: `multi_level` (its aux output) and, if needed, `feat_channels`."""
        if model is None:
            return {}
        out: dict[str, Any] = {"multi_level": bool(getattr(model, "multi_level", False))}
        if cls.needs_features:
            if not hasattr(model, "feat_channels"):
                raise AttributeError(f"{cls.__name__} needs the model's 'feat' output, but "
                                     f"{type(model).__name__} has no 'feat_channels'")
            out["feat_channels"] = int(model.feat_channels)
        return out

    @classmethod
    def wants_source_prior(cls, args: Mapping[str, Any]) -> bool:
        """Whether these constructor args need ``class_prior``, the source label histogram, filled in by the builder
        (computed once from data.source's labels). Default: never."""
        return False

    @property
    def levels(self) -> tuple[str, ...]:
        """Output levels the method uses: ("main",) or ("main", "aux")."""
        return ("main", "aux") if self.multi_level else ("main",)

    # ----------------------------------------------------------------- interface
    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Forward the segmenter; return (named weighted losses to sum and backprop,
        cache of detached tensors for D)."""
        raise NotImplementedError

    def discriminator_step(self, cache: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Named weighted discriminator losses computed from the cache (empty when the method has no discriminator)."""
        return {}

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters for the separate discriminator optimizer (Adam); empty when there is no discriminator."""
        return []

    def extra_parameters(self) -> list[nn.Parameter]:
        """Method parameters trained by the segmenter optimizer at head LR (e.g. DANN's domain classifier)."""
        return []

    def after_optimizer_step(self, model: nn.Module, iteration: int) -> None:
        """Called by the trainer after each segmenter optimizer step with the (unwrapped) model and the 0-based
        iteration; e.g. a mean teacher's EMA update. Default: nothing."""

    def eval_models(self) -> dict[str, nn.Module]:
        """Models besides the segmenter that the final evaluation also scores and reports under their name
        (e.g. {"teacher": ...}); the segmenter stays the model that is evaluated and saved for inference."""
        return {}

    def diagnostics(self, cache: Mapping[str, Tensor]) -> dict[str, object]:
        """Label-free diagnostics of the last `generator_step` (`seg_uda.methods.diagnostics`): mean prediction
        entropy per domain seen, and the target prediction's class histogram against the source labels'.
        Adversarial methods add their discriminators' accuracies."""
        out: dict[str, object] = {}
        hist: dict[str, list[float]] = {}
        for domain, (logits, labels, size) in self._last_seen.items():
            short = "src" if domain == "source" else "tgt"
            logits = upsample_logits(logits.float(), size)
            out[f"entropy_{short}"] = mean_entropy(logits)
            hist[f"hist_{short}_pred"] = class_histogram(logits.argmax(1), self.num_classes)
            if labels is not None:
                hist[f"hist_{short}_label"] = class_histogram(labels, self.num_classes)
        if "hist_tgt_pred" in hist and "hist_src_label" in hist:
            out["hist_tv_tgt_pred_vs_src_label"] = total_variation(hist["hist_tgt_pred"], hist["hist_src_label"])
        out.update(hist)
        return out

    # ----------------------------------------------------------------- helpers for subclasses
    def forward_model(self, model: nn.Module, batch: Batch | None, domain: str, **model_kwargs: Any
                      ) -> dict[str, Tensor]:
        """Run `model(batch["image"], **model_kwargs)` and check its output dict has what this method needs."""
        image = self.batch_item(batch, "image", domain)
        if image.dim() != 4:
            raise ValueError(f"{domain}['image'] must have shape [N,3,H,W], got shape {tuple(image.shape)}")
        out = model(image, **model_kwargs)
        if isinstance(out, Mapping) and "out" in out:
            self._last_seen[domain] = (out["out"].detach(), batch.get("label"), tuple(image.shape[-2:]))
        if not isinstance(out, Mapping) or "out" not in out:
            got = sorted(out) if isinstance(out, Mapping) else type(out).__name__
            raise TypeError(f"{type(self).__name__}: the model must return a dict with key 'out', got {got}")
        if out["out"].shape[1] != self.num_classes + int(self.unknown_head):
            raise ValueError(
                f"{type(self).__name__}: model output 'out' has {out['out'].shape[1]} channels "
                f"but num_classes={self.num_classes}" + (" plus the unknown channel" if self.unknown_head else "")
            )
        if self.multi_level and out.get("aux") is None:
            raise ValueError(
                f"{type(self).__name__}: multi_level=True needs the model to return 'aux' logits "
                f"(got keys {sorted(out)}); use a multi-level segmenter or multi_level=False"
            )
        return dict(out)

    def batch_item(self, batch: Batch | None, key: str, domain: str) -> Tensor:
        """`batch[key]` with an error naming the domain and key when the batch or key is missing."""
        if batch is None:
            raise ValueError(f"{type(self).__name__} needs a {domain} batch, got None")
        if key not in batch:
            raise KeyError(f"{type(self).__name__}: {domain} batch has no key '{key}' (keys: {sorted(batch)})")
        return batch[key]

    def source_labels(self, source: Batch | None) -> Tensor:
        """``source["label"]``; a (K+1)-way method (`unknown_head`) refuses the unknown id K among them: private
        classes must be ignored (255) in the source, never supervised as *unknown*."""
        labels = self.batch_item(source, "label", "source")
        if self.unknown_head and bool((labels == self.num_classes).any()):
            raise ValueError(f"{type(self).__name__}: source labels contain the unknown id {self.num_classes}; "
                             "private classes must be ignored (255) in the source (see seg_uda.openset)")
        return labels

    def seg_losses(self, out: Mapping[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        """Weighted supervised losses: `seg_main` and, when multi-level, `seg_aux`."""
        losses = {"seg_main": self.lambda_seg_main * seg_loss(out["out"], labels)}
        if self.multi_level:
            losses["seg_aux"] = self.lambda_seg_aux * seg_loss(out["aux"], labels)
        return losses

    def level_logits(self, out: Mapping[str, Tensor], level: str) -> Tensor:
        """Logits of one level: "main" -> out["out"], "aux" -> out["aux"]."""
        return out["out"] if level == "main" else out["aux"]

    @staticmethod
    def check_progress(progress: float) -> float:
        """Validate the training progress fraction (iteration / max_iters)."""
        progress = float(progress)
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"progress must be iteration / max_iters in [0, 1], got {progress}")
        return progress

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, multi_level={self.multi_level}"

