"""ADVENT's entropy-based adaptation (Vu et al., CVPR 2019): `minent`, `advent` and `advent_minent`.

All three add target-domain terms to the source cross-entropy, computed on the softmax of target logits
upsampled to the input size (bilinear, align_corners=True), as in ADVENT's `train_UDA.py`:
  * MinEnt: minimise the mean normalised entropy of target predictions (`ent_main`, `ent_aux`).
  * AdvEnt: a fully-convolutional discriminator per level sees weighted self-information maps
    I = -p log2 p / log2 C; the segmenter is trained to make target maps look like source ones
    (`adv_*`, target maps labelled *source*), the discriminator to tell them apart (`d_*_src` -> 0,
    `d_*_tgt` -> 1, each halved as in ADVENT).
Multi-level (`multi_level=True`) repeats every term on the model's "aux" logits with its own weight
(and its own discriminator).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_uda.models.discriminator import FCDiscriminator

from .base import METHODS, SOURCE_LABEL, TARGET_LABEL, Batch, UDAMethod, frozen
from .diagnostics import binary_accuracy
from .losses import bce_with_logits, entropy_loss, entropy_map, upsample_logits

__all__ = ["EntropyAdaptation", "MinEnt", "AdvEnt", "AdvEntMinEnt"]

_D_LOSS_SCALE = 0.5  # ADVENT halves each of the discriminator's source and target BCE terms


class EntropyTerms:
    """Mixin holding ADVENT's target terms (MinEnt entropy, AdvEnt adversarial) and the discriminator step.

    Used by `EntropyAdaptation` and by the open-set methods; `_probs` says which softmax the maps use.
    """

    levels: tuple[str, ...]

    def _init_entropy_terms(self, num_inputs: int, adversarial: bool, entropy: bool, lambda_adv_main: float,
                            lambda_adv_aux: float, lambda_ent_main: float, lambda_ent_aux: float,
                            disc_ndf: int) -> None:
        self.adversarial = bool(adversarial)
        self.entropy = bool(entropy)
        self.lambda_adv = {"main": float(lambda_adv_main), "aux": float(lambda_adv_aux)}
        self.lambda_ent = {"main": float(lambda_ent_main), "aux": float(lambda_ent_aux)}
        self.discriminators: nn.ModuleDict | None = None
        if self.adversarial:  # one discriminator per output level, on `num_inputs`-channel maps
            self.discriminators = nn.ModuleDict(
                {level: FCDiscriminator(num_inputs, ndf=disc_ndf) for level in self.levels}
            )

    def _probs(self, logits: Tensor, size: torch.Size) -> Tensor:
        """Softmax (in float32) of logits upsampled to the input image size."""
        return F.softmax(upsample_logits(logits, size).float(), dim=1)

    def _source_maps(self, src_out: Mapping[str, Tensor], size: torch.Size) -> dict[str, Tensor]:
        """Source self-information maps for the discriminator step (no graph needed)."""
        cache: dict[str, Tensor] = {}
        if self.adversarial:
            with torch.no_grad():
                for level in self.levels:
                    prob = self._probs(self.level_logits(src_out, level).detach(), size)
                    cache[f"src_{level}"] = entropy_map(prob)
        return cache

    def _target_terms(self, tgt_out: Mapping[str, Tensor], size: torch.Size
                      ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Weighted entropy / adversarial losses on the target, and the detached target maps for D."""
        losses: dict[str, Tensor] = {}
        cache: dict[str, Tensor] = {}
        if not (self.entropy or self.adversarial):
            return losses, cache
        for level in self.levels:
            prob = self._probs(self.level_logits(tgt_out, level), size)
            if self.entropy:
                losses[f"ent_{level}"] = self.lambda_ent[level] * entropy_loss(prob)
            if self.adversarial:
                assert self.discriminators is not None
                disc = self.discriminators[level]
                imap = entropy_map(prob)
                with frozen(disc):  # fool D: gradient reaches the segmenter only, never D
                    d_out = disc(imap)
                losses[f"adv_{level}"] = self.lambda_adv[level] * bce_with_logits(d_out, SOURCE_LABEL)
                cache[f"tgt_{level}"] = imap.detach()
        return losses, cache

    def discriminator_step(self, cache: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if not self.adversarial:
            return {}
        assert self.discriminators is not None
        losses: dict[str, Tensor] = {}
        for level in self.levels:
            disc = self.discriminators[level]
            for domain, label in (("src", SOURCE_LABEL), ("tgt", TARGET_LABEL)):
                key = f"{domain}_{level}"
                if key not in cache:
                    raise KeyError(
                        f"{type(self).__name__}.discriminator_step: cache has no '{key}' (keys: {sorted(cache)}); "
                        "pass the cache returned by generator_step"
                    )
                d_out = disc(cache[key].detach())  # detached: no gradient to the segmenter
                losses[f"d_{level}_{domain}"] = _D_LOSS_SCALE * bce_with_logits(d_out, label)
        return losses

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [] if self.discriminators is None else list(self.discriminators.parameters())

    def diagnostics(self, cache: Mapping[str, Tensor]) -> dict[str, object]:
        """The base diagnostics plus each discriminator's accuracy on this step's source and target maps."""
        out = super().diagnostics(cache)  # type: ignore[misc]
        if self.discriminators is not None:
            for level in self.levels:
                for domain, label in (("src", SOURCE_LABEL), ("tgt", TARGET_LABEL)):
                    if f"{domain}_{level}" in cache:
                        d_out = self.discriminators[level](cache[f"{domain}_{level}"])
                        out[f"disc_acc_{level}_{domain}"] = binary_accuracy(d_out, label)
        return out


class EntropyAdaptation(EntropyTerms, UDAMethod):
    """Shared implementation of MinEnt / AdvEnt / AdvEnt+MinEnt; switch the two target terms on or off."""

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
        *,
        adversarial: bool,
        entropy: bool,
        lambda_adv_main: float = 1e-3,
        lambda_adv_aux: float = 2e-4,
        lambda_ent_main: float = 1e-3,
        lambda_ent_aux: float = 2e-4,
        disc_ndf: int = 64,
    ) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        if not (adversarial or entropy):
            raise ValueError(f"{type(self).__name__}: enable at least one of adversarial / entropy")
        self._init_entropy_terms(num_classes, adversarial, entropy, lambda_adv_main, lambda_adv_aux,
                                 lambda_ent_main, lambda_ent_aux, disc_ndf)

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        self.check_progress(progress)
        src_labels = self.batch_item(source, "label", "source")
        src_out = self.forward_model(model, source, "source")
        losses = self.seg_losses(src_out, src_labels)
        cache = self._source_maps(src_out, source["image"].shape[-2:])
        tgt_out = self.forward_model(model, target, "target")
        tgt_losses, tgt_cache = self._target_terms(tgt_out, target["image"].shape[-2:])
        losses.update(tgt_losses)
        cache.update(tgt_cache)
        return losses, cache


@METHODS.register("minent")
class MinEnt(EntropyAdaptation):
    """ADVENT's direct entropy minimisation on target predictions (no discriminator)."""

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
        lambda_ent_main: float = 1e-3,
        lambda_ent_aux: float = 2e-4,
    ) -> None:
        super().__init__(
            num_classes, multi_level, lambda_seg_main, lambda_seg_aux,
            adversarial=False, entropy=True, lambda_ent_main=lambda_ent_main, lambda_ent_aux=lambda_ent_aux,
        )


@METHODS.register("advent")
class AdvEnt(EntropyAdaptation):
    """ADVENT's adversarial entropy minimisation: align target self-information maps with source ones via D."""

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
        lambda_adv_main: float = 1e-3,
        lambda_adv_aux: float = 2e-4,
        disc_ndf: int = 64,
    ) -> None:
        super().__init__(
            num_classes, multi_level, lambda_seg_main, lambda_seg_aux,
            adversarial=True, entropy=False, lambda_adv_main=lambda_adv_main, lambda_adv_aux=lambda_adv_aux,
            disc_ndf=disc_ndf,
        )


@METHODS.register("advent_minent")
class AdvEntMinEnt(EntropyAdaptation):
    """AdvEnt and MinEnt losses trained jointly in one model (adversarial and direct entropy terms).

    Note: the paper's "AdvEnt+MinEnt" row is instead an ensemble of two separately trained models whose
    softmax outputs are averaged 0.5/0.5 at test time (ADVENT's `advent+minent_pretrained.yml`).
    """

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
        lambda_adv_main: float = 1e-3,
        lambda_adv_aux: float = 2e-4,
        lambda_ent_main: float = 1e-3,
        lambda_ent_aux: float = 2e-4,
        disc_ndf: int = 64,
    ) -> None:
        super().__init__(
            num_classes, multi_level, lambda_seg_main, lambda_seg_aux,
            adversarial=True, entropy=True, lambda_adv_main=lambda_adv_main, lambda_adv_aux=lambda_adv_aux,
            lambda_ent_main=lambda_ent_main, lambda_ent_aux=lambda_ent_aux, disc_ndf=disc_ndf,
        )
