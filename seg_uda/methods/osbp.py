"""Open-set back-propagation (OSBP, Saito et al., ECCV 2018) per pixel, alone or with AdvEnt / MinEnt.

The segmenter has K+1 outputs, the last one *unknown*. Source pixels: cross-entropy with the known labels over all
K+1 outputs (OSBP; p(unknown) -> 0) or the K known ones (``source_ce="known"``). Target pixels: L = -t log p(unk)
- (1-t) log(1 - p(unk)), t = 0.5, through a gradient-reversal layer: the classifier minimises L (keeps target pixels
on the boundary p(unk) = t), the features maximise it (push each pixel to known or unknown). AdvEnt / MinEnt terms
use the softmax over the K known channels. ``pseudo_label=True`` adds BUS-style (Choe et al., CVPR 2024)
self-training: per batch the ``pl_unknown_fraction`` least confident target pixels are labelled *unknown*, those
with confidence >= ``pl_known_threshold`` their predicted class, the rest ignored (no target labels used).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from seg_uda.models.grl import GRLSchedule, grl_schedule

from .base import METHODS, Batch, UDAMethod
from .entropy_terms import EntropyTerms
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
        raise ValueError("confidence_pseudo_labels: expected [N, K, H, W] probabilities, "
                         f"got {tuple(known_probs.shape)}")
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
    """OSBP open-set adaptation; ``num_classes`` = K known classes, the model has K+1 outputs (`unknown_head`).

    ``lambda_unk_*`` weight the target unknown loss (OSBP: 1) behind a GRL of coefficient ``grl_max``, ramped in
    when ``grl_warmup`` (`seg_uda.models.grl`); ``adversarial`` / ``entropy`` add AdvEnt / MinEnt terms on the K known
    channels; ``pseudo_label`` adds the confidence pseudo-label loss (``lambda_pl_*``, ramped as the GRL).
    """

    unknown_head = True  # has_discriminators: when adversarial (each instance sets it; osbp_advent declares it)

    def __init__(
        self, num_classes: int, multi_level: bool = False, lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1, lambda_unk_main: float = 1.0, lambda_unk_aux: float = 0.1,
        unknown_target: float = 0.5, grl_max: float = 1.0, grl_warmup: bool = True, grl_gamma: float = 10.0,
        source_ce: Literal["all", "known"] = "all", adversarial: bool = False, entropy: bool = False,
        lambda_adv_main: float = 1e-3, lambda_adv_aux: float = 2e-4, lambda_ent_main: float = 1e-3,
        lambda_ent_aux: float = 2e-4, disc_ndf: int = 64, pseudo_label: bool = False,
        pl_unknown_fraction: float = 0.05, pl_known_threshold: float = 0.0, lambda_pl_main: float = 1.0,
        lambda_pl_aux: float = 0.1,
    ) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        if not 0.0 <= float(pl_unknown_fraction) < 1.0:
            raise ValueError(f"OSBP: pl_unknown_fraction must be in [0, 1), got {pl_unknown_fraction}")
        if source_ce not in ("all", "known"):
            raise ValueError(f"OSBP: source_ce must be 'all' or 'known', got {source_ce!r}")
        if not 0.0 <= float(unknown_target) <= 1.0:
            raise ValueError(f"OSBP: unknown_target must be in [0, 1], got {unknown_target}")
        self.pseudo_label, self.source_ce = bool(pseudo_label), source_ce
        self.pl_unknown_fraction, self.pl_known_threshold = float(pl_unknown_fraction), float(pl_known_threshold)
        self.lambda_pl = {"main": float(lambda_pl_main), "aux": float(lambda_pl_aux)}
        self.lambda_unk = {"main": float(lambda_unk_main), "aux": float(lambda_unk_aux)}
        self.unknown_target = float(unknown_target)
        self.grl = GRLSchedule(grl_max, grl_warmup, grl_gamma)
        self.init_entropy_terms(self.num_classes, adversarial, entropy, lambda_adv_main, lambda_adv_aux,
                                lambda_ent_main, lambda_ent_aux, disc_ndf)

    def grl_coefficient(self, progress: float) -> float:
        """The reversal coefficient at this training progress (iteration / max_iters)."""
        return self.grl(self.check_progress(progress))

    def _probs(self, logits: Tensor, size: torch.Size) -> Tensor:
        """Softmax over the K known channels of logits upsampled to the input size (float32)."""
        return torch.softmax(upsample_logits(logits[:, : self.num_classes], size).float(), dim=1)

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        progress = self.check_progress(progress)
        labels = self.source_labels(source)  # K = unknown must never be a source label
        src_out = self.forward_model(model, source, "source")
        known = {k: v[:, : self.num_classes] for k, v in src_out.items() if k in ("out", "aux") and v is not None}
        losses = self.seg_losses(known if self.source_ce == "known" else src_out, labels)
        cache = self.source_maps(src_out, source["image"].shape[-2:])

        tgt_out = self.forward_model(model, target, "target", grl_lambda=self.grl_coefficient(progress))
        tgt_size = target["image"].shape[-2:]
        for level in self.levels:
            rev = tgt_out.get("out_rev" if level == "main" else "aux_rev")
            if rev is None:
                raise ValueError(f"{type(self).__name__}: the model must support forward(x, grl_lambda=...) and "
                                 f"return '{level.replace('main', 'out')}_rev' (DeepLabV2 / DeepLabV3Plus do)")
            losses[f"unk_{level}"] = self.lambda_unk[level] * osbp_unknown_loss(rev, self.unknown_target)
        if self.pseudo_label:
            with torch.no_grad():  # labels from the model's own main prediction, no gradient through them
                pl = confidence_pseudo_labels(self._probs(tgt_out["out"].detach(), tgt_size),
                                              self.pl_unknown_fraction, self.pl_known_threshold, self.num_classes)
            ramp = grl_schedule(progress)
            for level in self.levels:
                losses[f"pl_{level}"] = ramp * self.lambda_pl[level] * seg_loss(self.level_logits(tgt_out, level), pl)
        tgt_losses, tgt_cache = self.target_terms(tgt_out, tgt_size)
        losses.update(tgt_losses)
        cache.update(tgt_cache)
        return losses, cache

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes} (+1 unknown), multi_level={self.multi_level}, "
                f"adversarial={self.adversarial}, entropy={self.entropy}, source_ce={self.source_ce}, "
                f"pseudo_label={self.pseudo_label}, {self.grl!r}")


OSBPMinEnt = METHODS.register_preset(
    "osbp_minent", OSBP, entropy=True, doc="OSBP + MinEnt (entropy of the K known classes minimised on the target).")
OSBPAdvEnt = METHODS.register_preset("osbp_advent", OSBP, adversarial=True, declares={"has_discriminators": True},
                                     doc="OSBP + AdvEnt (D on the K known classes' self-information).")
