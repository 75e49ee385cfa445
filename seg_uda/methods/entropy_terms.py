"""ADVENT's target terms (Vu et al., CVPR 2019) as a mixin: MinEnt's entropy loss and AdvEnt's adversarial loss
with one fully-convolutional discriminator per output level, shared by `advent.py` and `osbp.py`.

Maps are the softmax of target logits upsampled to the input size (bilinear, align_corners=True), as ADVENT's
`train_UDA.py`; the discriminator sees weighted self-information I = -p log2 p / log2 C, source maps labelled 0
and target maps 1 (each BCE halved, as ADVENT), and the segmenter is trained to make target maps look like source.
Optionally, the paper's class-ratio prior (``cp_*``, Sec. 3.3) keeps each class's mean target probability above a
relaxed share of the source labels.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_uda.models.discriminator import FCDiscriminator

from .base import SOURCE_LABEL, TARGET_LABEL, frozen
from .diagnostics import binary_accuracy
from .losses import bce_with_logits, class_prior_loss, entropy_loss, entropy_map, upsample_logits

__all__ = ["EntropyTerms", "ADVERSARIAL_ARGS", "ENTROPY_ARGS"]

_D_LOSS_SCALE = 0.5  # ADVENT halves each of the discriminator's source and target BCE terms
ADVERSARIAL_ARGS = ("lambda_adv_main", "lambda_adv_aux", "disc_ndf")  # constructor args of the adversarial term
ENTROPY_ARGS = ("lambda_ent_main", "lambda_ent_aux")  # ... and of the entropy term


class EntropyTerms:
    """Mixin for a `UDAMethod`: the entropy / adversarial target terms and the discriminator step.

    `_probs` is the hook that says which softmax the maps use (OSBP: the K known channels only).
    """

    levels: tuple[str, ...]  # (and `level_logits`, `diagnostics`) from UDAMethod
    lambda_cp: dict[str, float] = {}  # class-ratio prior weights per level; empty = off (init_class_prior)

    def init_entropy_terms(self, num_inputs: int, adversarial: bool, entropy: bool, lambda_adv_main: float,
                           lambda_adv_aux: float, lambda_ent_main: float, lambda_ent_aux: float,
                           disc_ndf: int) -> None:
        """Switch the terms on; one discriminator per level on `num_inputs`-channel maps when adversarial."""
        self.adversarial = bool(adversarial)
        self.entropy = bool(entropy)
        self.has_discriminators = self.adversarial
        self.lambda_adv = {"main": float(lambda_adv_main), "aux": float(lambda_adv_aux)}
        self.lambda_ent = {"main": float(lambda_ent_main), "aux": float(lambda_ent_aux)}
        self.discriminators: nn.ModuleDict | None = None
        if self.adversarial:
            self.discriminators = nn.ModuleDict(
                {level: FCDiscriminator(num_inputs, ndf=disc_ndf) for level in self.levels}
            )

    def init_class_prior(self, num_classes: int, lambda_cp_main: float, lambda_cp_aux: float, cp_mu: float,
                         class_prior: Sequence[float] | None) -> None:
        """Switch the class-ratio prior on where a weight is > 0; `class_prior` is the source label histogram."""
        weights = {"main": float(lambda_cp_main), "aux": float(lambda_cp_aux)}
        if any(w < 0 for w in weights.values()) or not 0.0 <= float(cp_mu) <= 1.0:
            raise ValueError(f"{type(self).__name__}: lambda_cp_* must be >= 0 and cp_mu in [0, 1], got "
                             f"{weights['main']} / {weights['aux']} and {cp_mu}")
        self.lambda_cp = {level: w for level, w in weights.items() if w > 0 and level in self.levels}
        self.cp_mu = float(cp_mu)
        if not self.lambda_cp:
            return
        if class_prior is None:
            raise ValueError(f"{type(self).__name__}: lambda_cp_* > 0 needs class_prior, the source label histogram "
                             "(from a config it is computed from data.source)")
        prior = torch.as_tensor([float(v) for v in class_prior], dtype=torch.float32)
        if prior.shape != (num_classes,) or not torch.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
            raise ValueError(f"{type(self).__name__}: class_prior must be {num_classes} non-negative numbers with a "
                             f"positive sum, got {list(class_prior)}")
        self.register_buffer("class_prior", prior / prior.sum(), persistent=False)  # type: ignore[attr-defined]

    def _probs(self, logits: Tensor, size: torch.Size) -> Tensor:
        """Softmax (in float32) of logits upsampled to the input image size."""
        return F.softmax(upsample_logits(logits, size).float(), dim=1)

    def source_maps(self, src_out: Mapping[str, Tensor], size: torch.Size) -> dict[str, Tensor]:
        """Detached source self-information maps `src_<level>` for the discriminator step (empty without D)."""
        cache: dict[str, Tensor] = {}
        if self.adversarial:
            with torch.no_grad():
                for level in self.levels:
                    prob = self._probs(self.level_logits(src_out, level).detach(), size)
                    cache[f"src_{level}"] = entropy_map(prob)
        return cache

    def target_terms(self, tgt_out: Mapping[str, Tensor], size: torch.Size
                     ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Weighted `ent_<level>` / `adv_<level>` losses on the target, and the detached `tgt_<level>` maps for D."""
        losses: dict[str, Tensor] = {}
        cache: dict[str, Tensor] = {}
        if not (self.entropy or self.adversarial or self.lambda_cp):
            return losses, cache
        for level in self.levels:
            prob = self._probs(self.level_logits(tgt_out, level), size)
            if self.entropy:
                losses[f"ent_{level}"] = self.lambda_ent[level] * entropy_loss(prob)
            if level in self.lambda_cp:
                losses[f"cp_{level}"] = self.lambda_cp[level] * class_prior_loss(prob, self.class_prior, self.cp_mu)
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
