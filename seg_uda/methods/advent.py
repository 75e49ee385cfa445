"""ADVENT (Vu et al., CVPR 2019) as one method class, `AdvEnt`, registered under three presets.

  * ``minent``: minimise the mean normalised entropy of target predictions (``ent_*``), no discriminator.
  * ``advent``: a discriminator per level on weighted self-information maps; the segmenter learns to make target
    maps look like source ones (``adv_*``), the discriminator to tell them apart (``d_*_src`` / ``d_*_tgt``).
  * ``advent_minent``: both terms trained jointly in one model. (The paper's "AdvEnt+MinEnt" row is instead an
    ensemble of two separately trained models, softmax averaged 0.5/0.5: ADVENT's ``advent+minent_pretrained.yml``.)
Multi-level (``multi_level=True``) repeats every term on the model's "aux" logits with its own weight (and D).
Every preset can add the paper's class-ratio prior (``lambda_cp_*`` > 0, ``cp_mu``; Sec. 3.3) against the source
label histogram, which the builder computes from data.source when ``class_prior`` is not given.
The terms themselves live in `entropy_terms.py` (shared with OSBP).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from .base import METHODS, Batch, UDAMethod
from .entropy_terms import ADVERSARIAL_ARGS, ENTROPY_ARGS, EntropyTerms

__all__ = ["AdvEnt", "MinEnt", "AdvEntMinEnt"]


class AdvEnt(EntropyTerms, UDAMethod):
    """ADVENT's entropy-based adaptation: source cross-entropy plus the target terms switched on by
    ``adversarial`` (AdvEnt) and ``entropy`` (MinEnt), with ADVENT's weights (1e-3 main / 2e-4 aux)."""

    has_discriminators = True  # when adversarial: each instance sets it, the minent preset declares False

    def __init__(
        self,
        num_classes: int,
        multi_level: bool = False,
        lambda_seg_main: float = 1.0,
        lambda_seg_aux: float = 0.1,
        adversarial: bool = True,
        entropy: bool = False,
        lambda_adv_main: float = 1e-3,
        lambda_adv_aux: float = 2e-4,
        lambda_ent_main: float = 1e-3,
        lambda_ent_aux: float = 2e-4,
        disc_ndf: int = 64,
        lambda_cp_main: float = 0.0,
        lambda_cp_aux: float = 0.0,
        cp_mu: float = 0.5,
        class_prior: Sequence[float] | None = None,
    ) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        if not (adversarial or entropy):
            raise ValueError(f"{type(self).__name__}: enable at least one of adversarial / entropy")
        self.init_entropy_terms(num_classes, adversarial, entropy, lambda_adv_main, lambda_adv_aux,
                                lambda_ent_main, lambda_ent_aux, disc_ndf)
        self.init_class_prior(num_classes, lambda_cp_main, lambda_cp_aux, cp_mu, class_prior)

    @classmethod
    def wants_source_prior(cls, args: Mapping[str, Any]) -> bool:
        """The class-ratio prior is on and no explicit ``class_prior`` was given."""
        on = float(args.get("lambda_cp_main", 0.0)) > 0 or float(args.get("lambda_cp_aux", 0.0)) > 0
        return on and args.get("class_prior") is None

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        self.check_progress(progress)
        src_labels = self.batch_item(source, "label", "source")
        src_out = self.forward_model(model, source, "source")
        losses = self.seg_losses(src_out, src_labels)
        cache = self.source_maps(src_out, source["image"].shape[-2:])
        tgt_out = self.forward_model(model, target, "target")
        tgt_losses, tgt_cache = self.target_terms(tgt_out, target["image"].shape[-2:])
        losses.update(tgt_losses)
        cache.update(tgt_cache)
        return losses, cache

    def extra_repr(self) -> str:
        cp = f", class_prior={self.lambda_cp} (mu={self.cp_mu})" if self.lambda_cp else ""
        return f"{super().extra_repr()}, adversarial={self.adversarial}, entropy={self.entropy}{cp}"


MinEnt = METHODS.register_preset(
    "minent", AdvEnt, fixed={"adversarial": False, "entropy": True}, hidden=ADVERSARIAL_ARGS,
    declares={"has_discriminators": False}, doc="ADVENT's direct entropy minimisation on target predictions.")
METHODS.register_preset(
    "advent", AdvEnt, fixed={"adversarial": True, "entropy": False}, hidden=ENTROPY_ARGS,
    doc="ADVENT's adversarial entropy minimisation: align target self-information maps with source ones via D.")
AdvEntMinEnt = METHODS.register_preset(
    "advent_minent", AdvEnt, fixed={"adversarial": True, "entropy": True},
    doc="AdvEnt and MinEnt losses trained jointly in one model (adversarial and direct entropy terms).")
