"""Open-set back-propagation (OSBP, Saito et al., ECCV 2018) per pixel, alone or with AdvEnt / MinEnt.

The segmenter has K+1 outputs, the last one *unknown*. Source pixels: cross-entropy with the known labels
(softmax over all K+1 outputs by default, as OSBP, so source pixels also learn p(unknown) -> 0; or over the
K known outputs with ``source_ce="known"``). Target pixels: L = -t log p(unk) - (1-t) log(1 - p(unk)), t = 0.5,
through a gradient-reversal layer between features and classifier: the classifier minimises L (keeps target
pixels on the boundary p(unk) = t) while the feature extractor maximises it (pushes each target pixel to
either side: known or unknown). AdvEnt / MinEnt terms use the softmax over the K known channels only.

``pseudo_label=True`` adds BUS-style (Choe et al., CVPR 2024) self-training on the target: per batch, the
``pl_unknown_fraction`` least confident pixels (max known-class probability, no target labels) are labelled
*unknown*, pixels with confidence >= ``pl_known_threshold`` get their predicted known class, the rest are ignored.
It anchors target pixels on one side of the boundary, which plain OSBP leaves at p(unknown) = t.
"""
from __future__ import annotations

import inspect
from typing import Literal, Mapping

import torch
from torch import Tensor, nn

from .advent import EntropyTerms
from .base import METHODS, Batch, UDAMethod
from .dann import grl_schedule
from .losses import seg_loss, upsample_logits

__all__ = ["OSBP", "OSBPMinEnt", "OSBPAdvEnt", "osbp_unknown_loss", "confidence_pseudo_labels"]

def osbp_unknown_loss(logits: Tensor, t: float = 0.5) -> Tensor:
    """Mean over pixels of -t log p_u - (1-t) log(1 - p_u), p_u = softmax(logits)[:, -1] (the unknown channel).

    Computed in log space (log(1 - p_u) = logsumexp of the known log-probabilities): no epsilon needed.
    """
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"osbp_unknown_loss: expected logits [N, K+1, H, W] with K >= 1, got {tuple(logits.shape)}")
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"osbp_unknown_loss: t must be in [0, 1], got {t}")
    logp = torch.log_softmax(logits.float(), dim=1)
    log_unk = logp[:, -1]
    log_known = torch.logsumexp(logp[:, :-1], dim=1)
    return -(float(t) * log_unk + (1.0 - float(t)) * log_known).mean()


def confidence_pseudo_labels(known_probs: Tensor, unknown_fraction: float, known_threshold: float,
                             unknown_id: int, ignore_index: int = 255) -> Tensor:
    """Pseudo-labels [N, H, W] from known-class probabilities [N, K, H, W] (no target labels involved).

    The ``unknown_fraction`` of pixels with the lowest confidence (max probability; ties at the cut included) ->
    ``unknown_id``; other pixels with confidence >= ``known_threshold`` -> their argmax; the rest -> ``ignore_index``.
    """
    if known_probs.dim() != 4:
        raise ValueError(f"confidence_pseudo_labels: expected [N, K, H, W] probabilities, got {tuple(known_probs.shape)}")
    if not 0.0 <= float(unknown_fraction) < 1.0:
        raise ValueError(f"confidence_pseudo_labels: unknown_fraction must be in [0, 1), got {unknown_fraction}")
    conf, label = known_probs.max(1)
    label = torch.where(conf >= float(known_threshold), label, torch.full_like(label, ignore_index))
    k = int(round(float(unknown_fraction) * conf.numel()))
    if k > 0:
        cut = conf.flatten().kthvalue(k).values
        label = torch.where(conf <= cut, torch.full_like(label, unknown_id), label)
    return label


@METHODS.register("osbp")
class OSBP(EntropyTerms, UDAMethod):
    """OSBP open-set adaptation; ``num_classes`` = K known classes, the model must output K+1 channels.

    ``lambda_unk_*`` weight the target unknown loss (OSBP: 1); ``grl_lambda`` scales the reversed feature
    gradient, ramped with DANN's 2/(1+exp(-10p))-1 when ``grl_warmup``. ``adversarial``/``entropy`` add
    AdvEnt / MinEnt terms (ADVENT weights) computed on the K known channels. ``pseudo_label`` adds the
    confidence pseudo-label loss (weights ``lambda_pl_*``, ramped like the GRL since early predictions are noise).
    """

    unknown_head = True  # the trainer builds the model with num_classes + 1 outputs

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
        lambda_unk_main: float = 1.0,
        lambda_unk_aux: float = 0.1,
        unknown_target: float = 0.5,
        grl_lambda: float = 1.0,
        grl_warmup: bool = True,
        source_ce: Literal["all", "known"] = "all",
        adversarial: bool = False,
        entropy: bool = False,
        lambda_adv_main: float = 1e-3,
        lambda_adv_aux: float = 2e-4,
        lambda_ent_main: float = 1e-3,
        lambda_ent_aux: float = 2e-4,
        disc_ndf: int = 64,
        pseudo_label: bool = False,
        pl_unknown_fraction: float = 0.05,
        pl_known_threshold: float = 0.0,
        lambda_pl_main: float = 1.0,
        lambda_pl_aux: float = 0.1,
    ) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        if not 0.0 <= float(pl_unknown_fraction) < 1.0:
            raise ValueError(f"OSBP: pl_unknown_fraction must be in [0, 1), got {pl_unknown_fraction}")
        self.pseudo_label = bool(pseudo_label)
        self.pl_unknown_fraction = float(pl_unknown_fraction)
        self.pl_known_threshold = float(pl_known_threshold)
        self.lambda_pl = {"main": float(lambda_pl_main), "aux": float(lambda_pl_aux)}
        if source_ce not in ("all", "known"):
            raise ValueError(f"OSBP: source_ce must be 'all' or 'known', got {source_ce!r}")
        if not 0.0 <= float(unknown_target) <= 1.0:
            raise ValueError(f"OSBP: unknown_target must be in [0, 1], got {unknown_target}")
        self.num_outputs = self.num_classes + 1
        self.lambda_unk = {"main": float(lambda_unk_main), "aux": float(lambda_unk_aux)}
        self.unknown_target = float(unknown_target)
        self.grl_lambda = float(grl_lambda)
        self.grl_warmup = bool(grl_warmup)
        self.source_ce = source_ce
        # AdvEnt / MinEnt terms: D sees the self-information of the K known classes (see `_probs`)
        self._init_entropy_terms(self.num_classes, adversarial, entropy, lambda_adv_main, lambda_adv_aux,
                                 lambda_ent_main, lambda_ent_aux, disc_ndf)

    def reversal_strength(self, progress: float) -> float:
        """GRL coefficient at this training progress."""
        return self.grl_lambda * (grl_schedule(progress) if self.grl_warmup else 1.0)

    def _forward(self, model: nn.Module, batch: Batch | None, domain: str, grl_lambda: float | None) -> dict:
        image = self.batch_item(batch, "image", domain)
        if image.dim() != 4:
            raise ValueError(f"{domain}['image'] must have shape [N,3,H,W], got shape {tuple(image.shape)}")
        out = model(image) if grl_lambda is None else model(image, grl_lambda=grl_lambda)
        if not isinstance(out, Mapping) or "out" not in out:
            raise TypeError(f"{type(self).__name__}: the model must return a dict with key 'out'")
        if out["out"].shape[1] != self.num_outputs:
            raise ValueError(f"{type(self).__name__}: model output 'out' has {out['out'].shape[1]} channels but an "
                             f"open-set head needs K+1 = {self.num_outputs} (num_classes={self.num_classes} known)")
        for level in self.levels:
            key = "out" if level == "main" else "aux"
            if out.get(key) is None:
                raise ValueError(f"{type(self).__name__}: multi_level=True needs the model to return 'aux' logits")
            if grl_lambda is not None and out.get(f"{key}_rev") is None:
                raise ValueError(f"{type(self).__name__}: the model must support forward(x, grl_lambda=...) and "
                                 f"return '{key}_rev' (DeepLabV2 / DeepLabV3Plus do)")
        return dict(out)

    def _probs(self, logits: Tensor, size: torch.Size) -> Tensor:
        """Softmax over the K known channels of logits upsampled to the input size (float32)."""
        return torch.softmax(upsample_logits(logits[:, : self.num_classes], size).float(), dim=1)

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        progress = self.check_progress(progress)
        labels = self.batch_item(source, "label", "source")
        if bool((labels == self.num_classes).any()):  # K = unknown must never be a source label
            raise ValueError(f"{type(self).__name__}: source labels contain the unknown id {self.num_classes}; "
                             "private classes must be ignored (255) in the source (see seg_uda.openset)")
        src_out = self._forward(model, source, "source", None)
        losses: dict[str, Tensor] = {}
        for level in self.levels:
            logits = self.level_logits(src_out, level)
            if self.source_ce == "known":
                logits = logits[:, : self.num_classes]
            weight = self.lambda_seg_main if level == "main" else self.lambda_seg_aux
            losses[f"seg_{level}"] = weight * seg_loss(logits, labels)
        cache = self._source_maps(src_out, source["image"].shape[-2:])

        tgt_out = self._forward(model, target, "target", self.reversal_strength(progress))
        tgt_size = target["image"].shape[-2:]
        for level in self.levels:
            rev = tgt_out["out_rev" if level == "main" else "aux_rev"]
            losses[f"unk_{level}"] = self.lambda_unk[level] * osbp_unknown_loss(rev, self.unknown_target)
        if self.pseudo_label:
            with torch.no_grad():  # labels from the model's own main prediction, no gradient through them
                pl = confidence_pseudo_labels(self._probs(tgt_out["out"].detach(), tgt_size),
                                              self.pl_unknown_fraction, self.pl_known_threshold, self.num_classes)
            ramp = grl_schedule(progress)
            for level in self.levels:
                losses[f"pl_{level}"] = ramp * self.lambda_pl[level] * seg_loss(self.level_logits(tgt_out, level), pl)
        tgt_losses, tgt_cache = self._target_terms(tgt_out, tgt_size)
        losses.update(tgt_losses)
        cache.update(tgt_cache)
        return losses, cache

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes} (+1 unknown), multi_level={self.multi_level}, "
                f"adversarial={self.adversarial}, entropy={self.entropy}, source_ce={self.source_ce}, "
                f"pseudo_label={self.pseudo_label}")


def _variant(name: str, doc: str, **defaults: bool) -> type:
    """A registered OSBP subclass whose flags default to ``defaults`` (same signature otherwise)."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        for k, v in defaults.items():
            kwargs.setdefault(k, v)
        OSBP.__init__(self, *args, **kwargs)

    sig = inspect.signature(OSBP.__init__)
    __init__.__signature__ = sig.replace(parameters=[  # type: ignore[attr-defined]
        p.replace(default=defaults[p.name]) if p.name in defaults else p for p in sig.parameters.values()])
    __init__.__annotations__ = dict(OSBP.__init__.__annotations__)
    cls = type(name, (OSBP,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    return cls


OSBPMinEnt = METHODS.register("osbp_minent")(
    _variant("OSBPMinEnt", "OSBP + MinEnt (entropy of the K known classes minimised on the target).", entropy=True))
OSBPAdvEnt = METHODS.register("osbp_advent")(
    _variant("OSBPAdvEnt", "OSBP + AdvEnt (discriminator on the K known classes' self-information).", adversarial=True))
