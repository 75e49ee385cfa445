"""FDA (Yang & Soatto, CVPR 2020): source images take a target image's low-frequency FFT amplitude (phase, labels
kept), plus a robust entropy on the target. The swap runs on raw pixels as FDA's (README: normalize after, else
artifacts): `from_config` passes the config's normalization (without it, normalized values are swapped)."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg_uda.data.transforms import tensor_normalization

from .base import METHODS, Batch, UDAMethod

__all__ = ["FDA", "fda_source_to_target", "robust_entropy"]

_CHARBONNIER_EPS2 = 1e-8  # FDA's code: ent ** 2 + 1e-8; the paper writes the Charbonnier constant as 0.001 ** 2


def fda_source_to_target(src: Tensor, tgt: Tensor, beta: float) -> Tensor:
    """`src` [N,C,H,W] whose FFT amplitude takes `tgt`'s in the four b x b corners, b = floor(min(H, W) * beta): the
    centred low band without fftshift, as FDA's `low_freq_mutate`. Phase kept; real part returned; beta 0: `src`."""
    if src.shape != tgt.shape or src.dim() != 4:
        raise ValueError(f"fda_source_to_target: need two [N,C,H,W] of one shape, got {tuple(src.shape)}, "
                         f"{tuple(tgt.shape)}")
    h, w = src.shape[-2:]
    b = int(math.floor(min(h, w) * float(beta)))
    if b == 0:
        return src
    dtype = torch.promote_types(src.dtype, torch.float32)  # float64 stays, half precision computes in float32
    fft_src = torch.fft.fft2(src.to(dtype))
    rows, cols = torch.zeros(h, dtype=torch.bool), torch.zeros(w, dtype=torch.bool)
    rows[:b], rows[h - b:], cols[:b], cols[w - b:] = True, True, True, True
    band = (rows[:, None] & cols[None, :]).to(src.device)
    amp = torch.where(band, torch.fft.fft2(tgt.to(dtype)).abs(), fft_src.abs())
    return torch.fft.ifft2(torch.polar(amp, fft_src.angle())).real.to(src.dtype)


def robust_entropy(logits: Tensor, eta: float = 2.0) -> Tensor:
    """FDA's entropy loss: mean over pixels of ((H(p) / log C) ** 2 + 1e-8) ** eta, p = softmax(logits) [N,C,h,w]."""
    logp = F.log_softmax(logits.float(), dim=1)
    ent = -(logp.exp() * logp).sum(1) / math.log(logits.shape[1])
    return ((ent ** 2 + _CHARBONNIER_EPS2) ** float(eta)).mean()


@METHODS.register("fda")
class FDA(UDAMethod):
    """Seg loss on source images in the target's low-frequency amplitude (band ``beta``) + ``lambda_ent`` x
    `robust_entropy` (``eta``) of the target's main logits at output resolution (FDA's code) from progress
    ``entropy_start`` (FDA's switch2entropy). Targets are resized to the source size."""

    derived_args = ("num_classes", "pixel_mean", "pixel_std")

    def __init__(self, num_classes: int, multi_level: bool = False, lambda_seg_main: float = 1.0,
                 lambda_seg_aux: float = 0.1, beta: float = 0.01, eta: float = 2.0, lambda_ent: float = 0.005,
                 entropy_start: float = 0.0, pixel_mean: Optional[Sequence[float]] = None,
                 pixel_std: Optional[Sequence[float]] = None) -> None:
        super().__init__(num_classes, multi_level, lambda_seg_main, lambda_seg_aux)
        if not 0.0 <= float(beta) < 0.5:
            raise ValueError(f"FDA: beta must be in [0, 0.5) (a fraction of the image size), got {beta}")
        self.beta, self.eta, self.lambda_ent = float(beta), float(eta), float(lambda_ent)
        self.entropy_start, self.pixel_mean, self.pixel_std = float(entropy_start), pixel_mean, pixel_std

    @classmethod
    def from_config(cls, cfg: Any, model: nn.Module | None = None) -> dict[str, Any]:
        mean, std = tensor_normalization(cfg.data.normalization)  # the caffe tensors are BGR
        return {**super().from_config(cfg, model), "pixel_mean": mean, "pixel_std": std}

    @torch.no_grad()
    def stylise(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Source images [N,3,H,W] in the low-frequency amplitude of target images (cycled, resized to H x W)."""
        if int(min(src.shape[-2:]) * self.beta) == 0:  # an empty band: the source images unchanged
            return src
        tgt = tgt[torch.arange(len(src), device=tgt.device) % len(tgt)].float()
        if tgt.shape[-2:] != src.shape[-2:]:
            tgt = F.interpolate(tgt, size=src.shape[-2:], mode="bilinear", align_corners=False)
        mean, std = (torch.tensor(v if v is not None else d, device=src.device).view(1, -1, 1, 1)
                     for v, d in ((self.pixel_mean, 0.0), (self.pixel_std, 1.0)))
        with torch.autocast(src.device.type, enabled=False):  # FFTs in float32
            styled = fda_source_to_target(src.float() * std + mean, tgt * std + mean, self.beta)
        return ((styled - mean) / std).to(src.dtype)

    def generator_step(
        self, model: nn.Module, source: Batch | None, target: Batch | None, progress: float
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        progress = self.check_progress(progress)
        labels = self.batch_item(source, "label", "source")
        styled = {**source, "image": self.stylise(source["image"], self.batch_item(target, "image", "target"))}
        losses = self.seg_losses(self.forward_model(model, styled, "source"), labels)
        tgt_out = self.forward_model(model, target, "target")
        weight = self.lambda_ent if progress >= self.entropy_start else 0.0
        losses["ent_main"] = weight * robust_entropy(tgt_out["out"], self.eta)
        return losses, {}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beta={self.beta}, eta={self.eta}, lambda_ent={self.lambda_ent}"
