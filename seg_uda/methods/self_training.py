"""Mean-teacher self-training (DACS, Tranheden et al. 2021; DAFormer, Hoyer et al. 2022; MIC, Hoyer et al. 2023):
the student learns from source labels and from an EMA teacher's confidence-weighted pseudo-labels on ClassMix
images (source classes pasted onto target images), optionally on masked target images (MIC), and optionally
with ADVENT's entropy / adversarial terms on the target (the same `EntropyTerms` as AdvEnt, no new path).
`open_self_training` is the same method with a (K+1)-way head: the least confident target pixels of each image
become *unknown* pseudo-labels (open set, in the spirit of BUS, Choe et al. CVPR 2024)."""
from __future__ import annotations

import copy
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_uda.data.transforms import tensor_normalization

from .base import METHODS, Batch, UDAMethod
from .entropy_terms import EntropyTerms
from .losses import upsample_logits
from .mixing import Generators, classmix_masks, patch_mask, sample_generators, strong_augment

__all__ = ["SelfTraining", "OpenSelfTraining", "weighted_seg_loss", "ema_alpha", "least_confident_unknown"]


def ema_alpha(iteration: int, alpha: float) -> float:
    """DAFormer's EMA coefficient at (0-based) ``iteration``: min(1 - 1 / (t + 1), alpha)."""
    return min(1.0 - 1.0 / (iteration + 1), alpha)


def weighted_seg_loss(logits: Tensor, labels: Tensor, weight: Tensor, ignore_index: int = 255) -> Tensor:
    """Cross-entropy of ``logits`` upsampled to ``labels`` [N,H,W], times the per-pixel ``weight``, averaged over
    all pixels (ignored ones count as 0), as DACS / DAFormer."""
    logits = upsample_logits(logits, labels.shape[-2:]).float()
    ce = F.cross_entropy(logits, labels.long(), ignore_index=ignore_index, reduction="none")
    return (ce * weight).mean()


def least_confident_unknown(conf: Tensor, labels: Tensor, fraction: float, unknown_id: int) -> Tensor:
    """``labels`` [N,H,W] with the ``fraction`` of each image's pixels of lowest ``conf`` (ties at the cut
    included) set to ``unknown_id``: per image, so a rank's share of the batch gives what the whole batch gives."""
    k = int(round(float(fraction) * conf[0].numel()))
    if k == 0:
        return labels
    cut = conf.flatten(1).kthvalue(k, dim=1).values.view(-1, 1, 1)
    return torch.where(conf <= cut, torch.full_like(labels, unknown_id), labels)


class SelfTraining(EntropyTerms, UDAMethod):
    """Source cross-entropy + ``lambda_mix`` x weighted CE on ClassMix images against the teacher's pseudo-labels
    (+ ``lambda_mic`` x the same on masked target images when ``mic``). Pseudo-label weight: the fraction of an
    image's pixels whose teacher confidence exceeds ``pseudo_threshold`` (1 without ``confidence_weight``), 0 in
    the ``pl_ignore_top`` / ``pl_ignore_bottom`` rows. Lengths (``pl_ignore_*``, ``mic_patch``) are in pixels of
    a ``reference_height``-pixel input (DAFormer's 512) and scaled to the actual input height. ``open_set``
    (registered as `open_self_training`): the model has K+1 outputs; the teacher's confidence is the max of its
    softmax over the K known outputs, and the ``pl_unknown_fraction`` least confident pixels of each target image
    are labelled *unknown* (K); source pixels learn p(unknown) -> 0 through the (K+1)-way cross-entropy."""

    has_discriminators = False  # when adversarial: each instance sets it
    derived_args = ("num_classes", "teacher", "pixel_mean", "pixel_std")

    def __init__(self, num_classes: int, multi_level: bool = False, lambda_seg_main: float = 1.0,
                 lambda_seg_aux: float = 0.1, teacher: Optional[nn.Module] = None, ema: float = 0.999,
                 pseudo_threshold: float = 0.968, confidence_weight: bool = True, pl_ignore_top: int = 0,
                 pl_ignore_bottom: int = 0, reference_height: int = 512, lambda_mix: float = 1.0,
                 color_jitter: float = 0.2, color_jitter_p: float = 0.2, blur: bool = True, mic: bool = False,
                 mic_patch: int = 64, mic_ratio: float = 0.7, lambda_mic: float = 1.0, adversarial: bool = False,
                 entropy: bool = False, lambda_adv_main: float = 1e-3, lambda_adv_aux: float = 2e-4,
                 lambda_ent_main: float = 1e-3, lambda_ent_aux: float = 2e-4, disc_ndf: int = 64,
                 pixel_mean: Optional[Sequence[float]] = None, pixel_std: Optional[Sequence[float]] = None,
                 open_set: bool = False, pl_unknown_fraction: float = 0.05) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        if not 0.0 <= ema < 1.0 or not 0.0 <= pseudo_threshold <= 1.0 or not 0.0 <= mic_ratio < 1.0:
            raise ValueError(f"SelfTraining: need 0 <= ema < 1, 0 <= pseudo_threshold <= 1, 0 <= mic_ratio < 1; "
                             f"got {ema}, {pseudo_threshold}, {mic_ratio}")
        if not 0.0 <= float(pl_unknown_fraction) < 1.0:
            raise ValueError(f"SelfTraining: pl_unknown_fraction must be in [0, 1), got {pl_unknown_fraction}")
        self.unknown_head = bool(open_set)  # the instance's declaration; `open_self_training` declares it too
        self.pl_unknown_fraction = float(pl_unknown_fraction)
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.ema, self.pseudo_threshold, self.confidence_weight = float(ema), float(pseudo_threshold), confidence_weight
        self.pl_ignore, self.reference_height = (int(pl_ignore_top), int(pl_ignore_bottom)), int(reference_height)
        self.lambda_mix, self.jitter, self.jitter_p, self.blur = float(lambda_mix), color_jitter, color_jitter_p, blur
        self.mic, self.mic_patch, self.mic_ratio, self.lambda_mic = mic, int(mic_patch), mic_ratio, float(lambda_mic)
        self.pixel_mean, self.pixel_std = list(pixel_mean or (0.0,) * 3), list(pixel_std or (1.0,) * 3)
        self._pl_confident: Optional[Tensor] = None  # the last pseudo-labels' confident fraction per image
        self.init_entropy_terms(num_classes, adversarial, entropy, lambda_adv_main, lambda_adv_aux,
                                lambda_ent_main, lambda_ent_aux, disc_ndf)

    @classmethod
    def model_args(cls, model: nn.Module | None) -> dict[str, Any]:
        """The teacher starts as a copy of the student (the same initial weights on every rank)."""
        return {**super().model_args(model), "teacher": copy.deepcopy(model)} if model is not None else {}

    @classmethod
    def from_config(cls, cfg: Any, model: nn.Module | None = None) -> dict[str, Any]:
        mean, std = tensor_normalization(cfg.data.normalization)
        return {**super().from_config(cfg, model), "pixel_mean": mean, "pixel_std": std}

    def train(self, mode: bool = True) -> "SelfTraining":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # the teacher always predicts in inference mode
        return self

    def extra_parameters(self) -> list[nn.Parameter]:
        return []  # the teacher is updated by EMA, never by the optimizer

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module, iteration: int) -> None:
        """θ_teacher ← α θ_teacher + (1 − α) θ_student, α = `ema_alpha` (DAFormer's update, parameters only)."""
        alpha = ema_alpha(iteration, self.ema)
        for t, s in zip(self._teacher().parameters(), model.parameters()):
            t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)

    def diagnostics(self, cache: Mapping[str, Tensor]) -> dict[str, object]:
        """The base diagnostics (here "tgt" is the teacher's target prediction) plus the mean fraction of target
        pixels above the confidence threshold: how much the pseudo-labels weigh."""
        out = super().diagnostics(cache)
        if self._pl_confident is not None:
            out["pl_confident_fraction"] = float(self._pl_confident.mean())
        return out

    def eval_models(self) -> dict[str, nn.Module]:
        return {"teacher": self._teacher()}

    def _probs(self, logits: Tensor, size: torch.Size) -> Tensor:
        """Softmax at ``size`` for the pseudo-labels and ADVENT's terms; open set: over the K known outputs only (as
        OSBP's)."""
        return super()._probs(logits[:, : self.num_classes] if self.unknown_head else logits, size)

    def _teacher(self) -> nn.Module:
        if self.teacher is None:
            raise ValueError("SelfTraining needs a teacher: build it with from_config(cfg, model) or pass teacher=")
        return self.teacher

    def _scaled(self, pixels: int, height: int) -> int:
        return int(round(pixels * height / self.reference_height))

    @torch.no_grad()
    def pseudo_labels(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The teacher's argmax labels [N,H,W] on ``image`` and their per-pixel weights [N,H,W]."""
        out = self._teacher()(image)
        self._last_seen["target"] = (out["out"].detach(), None, tuple(image.shape[-2:]))  # diagnostics
        conf, labels = self._probs(out["out"], image.shape[-2:]).max(1)  # open set: over the K known outputs
        if self.unknown_head:  # the least confident pixels -> unknown (K)
            labels = least_confident_unknown(conf, labels, self.pl_unknown_fraction, self.num_classes)
        frac = (conf > self.pseudo_threshold).float().mean((1, 2))
        self._pl_confident = frac.detach()  # for `diagnostics`
        if self.confidence_weight:
            weight = frac.view(-1, 1, 1).expand_as(conf).clone()
        else:
            weight = torch.ones_like(conf)
        h = image.shape[-2]
        top, bottom = self._scaled(self.pl_ignore[0], h), self._scaled(self.pl_ignore[1], h)
        weight[:, :top] = 0.0
        if bottom > 0:
            weight[:, h - bottom:] = 0.0
        return labels, weight

    def mix(self, source: Batch, tgt_image: Tensor, pl: Tensor, weight: Tensor, generators: Generators = None
            ) -> tuple[Tensor, Tensor, Tensor]:
        """ClassMix: half the classes of each source image (resized to the target size) pasted onto the target
        image of the same index; returns the strongly augmented mixed images, labels and weights."""
        size = tgt_image.shape[-2:]
        n = len(tgt_image)
        idx = torch.arange(n, device=tgt_image.device) % len(source["image"])
        src_img, src_lbl = source["image"][idx], source["label"][idx].long()
        if src_img.shape[-2:] != size:
            src_img = F.interpolate(src_img.float(), size=size, mode="bilinear", align_corners=False)
            src_lbl = F.interpolate(src_lbl[:, None].float(), size=size, mode="nearest")[:, 0].long()
        mask = classmix_masks(src_lbl, generators)
        image = torch.where(mask[:, None], src_img.to(tgt_image.dtype), tgt_image)
        labels = torch.where(mask, src_lbl, pl)
        weights = torch.where(mask, torch.ones_like(weight), weight)
        return self._strong(image, generators), labels, weights

    def _strong(self, image: Tensor, generators: Generators) -> Tensor:
        return strong_augment(image, self.pixel_mean, self.pixel_std, self.jitter, self.jitter_p, self.blur,
                              generators)

    def generator_step(self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
                       ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        self.check_progress(progress)
        src_labels = self.source_labels(source)
        tgt_image = self.batch_item(target, "image", "target")
        src_out = self.forward_model(model, source, "source")
        losses = self.seg_losses(src_out, src_labels)
        cache = self.source_maps(src_out, source["image"].shape[-2:])
        if self.adversarial or self.entropy:  # ADVENT's target terms on the student's target prediction
            tgt_terms, tgt_cache = self.target_terms(model(tgt_image), tgt_image.shape[-2:])
            losses.update(tgt_terms)
            cache.update(tgt_cache)
        pl, weight = self.pseudo_labels(tgt_image)
        gens = sample_generators(target, len(tgt_image))  # per-image draws: independent of the rank split
        mixed, mixed_labels, mixed_weight = self.mix(source, tgt_image, pl, weight, gens)
        losses["mix_main"] = self.lambda_mix * weighted_seg_loss(model(mixed)["out"], mixed_labels, mixed_weight)
        if self.mic:
            h = tgt_image.shape[-2]
            masked = self._strong(tgt_image, gens) * patch_mask(
                len(tgt_image), tgt_image.shape[-2:], self._scaled(self.mic_patch, h), self.mic_ratio,
                tgt_image.device, gens).to(tgt_image.dtype)
            losses["mic_main"] = self.lambda_mic * weighted_seg_loss(model(masked)["out"], pl, weight)
        return losses, cache

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, ema={self.ema}, pseudo_threshold={self.pseudo_threshold}, mic={self.mic}, "
                f"adversarial={self.adversarial}, entropy={self.entropy}"
                + (f", open_set (unknown: {self.pl_unknown_fraction:g} per image)" if self.unknown_head else ""))


METHODS.register_preset("self_training", SelfTraining, hidden=("open_set", "pl_unknown_fraction"),
                        doc=SelfTraining.__doc__)
OpenSelfTraining = METHODS.register_preset(
    "open_self_training", SelfTraining, fixed={"open_set": True}, declares={"unknown_head": True},
    doc="Open-set self-training: a (K+1)-way student and teacher; the pl_unknown_fraction least confident target "
        "pixels of each image are pseudo-labelled unknown.")
