"""Image-level operations of mean-teacher self-training (DACS, DAFormer, MIC): ClassMix masks, DACS's strong
augmentation (colour jitter and Gaussian blur on de-normalised pixels) and MIC's random patch masks.

Every random draw is per image and takes that image's ``torch.Generator`` (`sample_generators`: seeded from the
sample's stream position), so the draws do not depend on how a global batch is split over ranks, on the worker
count or on where a run resumed. Without generators the global torch generator is used.
"""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["classmix_masks", "color_jitter", "gaussian_blur", "patch_mask", "sample_generators", "strong_augment"]

Generators = Optional[Sequence[Optional[torch.Generator]]]
_SALT = 0x5E1F  # decorrelates these draws from the augmentation seeded with the same sample seed
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           dtype=torch.float32)  # the pixels are jittered in float32
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)  # computed once, not per jittered image


def sample_generators(batch: Mapping[str, Any], n: int) -> List[Optional[torch.Generator]]:
    """One CPU generator per image, seeded from the batch's ``sample_seed`` (set by the seeded data stream);
    [None] * n (the global generator) when the batch has none, e.g. hand-made batches."""
    seeds = batch.get("sample_seed")
    if seeds is None:
        return [None] * n
    return [torch.Generator().manual_seed(int(s) * 1_000_003 + _SALT) for s in seeds.reshape(-1).tolist()[:n]]


def _rand(g: Optional[torch.Generator], *size: int) -> Tensor:
    return torch.rand(*size, generator=g)


def classmix_masks(labels: Tensor, generators: Generators = None, ignore_index: int = 255) -> Tensor:
    """ClassMix (Olsson et al., as DACS): per image, True on the pixels of a random half of the classes present
    in ``labels`` [N,H,W] (ceil(n / 2) of n classes, ignored pixels never chosen); bool [N,H,W]."""
    gens = list(generators) if generators is not None else [None] * len(labels)
    masks = []
    for lbl, g in zip(labels, gens):
        classes = torch.unique(lbl)
        classes = classes[classes != ignore_index]
        n = len(classes)
        chosen = classes[torch.randperm(n, generator=g)[: (n + n % 2) // 2].to(classes.device)]
        masks.append(torch.isin(lbl, chosen))
    return torch.stack(masks)


def _gray(x: Tensor) -> Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def color_jitter(x: Tensor, strength: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s], then the hue rotated by up
    to s of a full turn (in YIQ), on RGB pixels [N,3,H,W] in [0, 1] (kornia's ColorJitter(s, s, s, s), as DACS;
    one draw of each factor per call)."""
    def factor() -> float:
        return 1.0 + strength * float(2 * _rand(generator, 1) - 1)

    x = (x * factor()).clamp(0, 1)
    mean = _gray(x).mean((2, 3), keepdim=True)
    x = ((x - mean) * factor() + mean).clamp(0, 1)
    gray = _gray(x)
    x = ((x - gray) * factor() + gray).clamp(0, 1)
    angle = 2 * math.pi * strength * float(2 * _rand(generator, 1) - 1)
    yiq = torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(x), x)
    cos, sin = math.cos(angle), math.sin(angle)
    i, q = yiq[:, 1] * cos - yiq[:, 2] * sin, yiq[:, 1] * sin + yiq[:, 2] * cos
    yiq = torch.stack([yiq[:, 0], i, q], 1)
    return torch.einsum("ij,njhw->nihw", _YIQ_TO_RGB.to(x), yiq).clamp(0, 1)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with DACS's kernel size (about 10% of the image side, odd) and reflect padding."""
    out = x
    for dim in (2, 3):
        length = x.shape[dim]
        k = max(3, int(math.floor(math.ceil(0.1 * length) - 0.5 + math.ceil(0.1 * length) % 2)))
        k += 1 - k % 2
        t = torch.arange(k, dtype=x.dtype, device=x.device) - (k - 1) / 2
        kernel = torch.exp(-(t ** 2) / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        kernel = kernel.view(1, 1, -1, 1) if dim == 2 else kernel.view(1, 1, 1, -1)
        pad = (0, 0, k // 2, k // 2) if dim == 2 else (k // 2, k // 2, 0, 0)
        c = out.shape[1]
        out = F.conv2d(F.pad(out, pad, mode="reflect"), kernel.expand(c, 1, *kernel.shape[-2:]), groups=c)
    return out


def strong_augment(image: Tensor, mean: Sequence[float], std: Sequence[float], jitter: float = 0.2,
                   jitter_p: float = 0.2, blur: bool = True, generators: Generators = None) -> Tensor:
    """DACS's strong augmentation of a normalized batch [N,3,H,W], drawn per image: with probability ``jitter_p``
    colour jitter of strength ``jitter``, and with probability 0.5 (when ``blur``) a blur with sigma ~
    U(0.15, 1.15). ``mean`` / ``std`` undo the normalization ([0, 1] units, tensor channel order)."""
    gens = list(generators) if generators is not None else [None] * len(image)
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(1, -1, 1, 1)
    out = []
    for img, g in zip(image, gens):
        do_jitter = jitter > 0 and float(_rand(g, 1)) < jitter_p
        do_blur = blur and float(_rand(g, 1)) > 0.5
        sigma = 0.15 + float(_rand(g, 1))
        if not (do_jitter or do_blur):
            out.append(img)
            continue
        x = img[None].float() * s + m
        if do_jitter:
            x = color_jitter(x.clamp(0, 1), jitter, g)
        if do_blur:
            x = gaussian_blur(x, sigma)
        out.append(((x - m) / s)[0].to(image.dtype))
    return torch.stack(out)


def patch_mask(n: int, size: Sequence[int], patch: int, ratio: float, device: torch.device,
               generators: Generators = None) -> Tensor:
    """MIC's mask [N,1,H,W]: 0 on the ``patch`` x ``patch`` blocks masked (each independently with probability
    ``ratio``), 1 elsewhere."""
    h, w = int(size[0]), int(size[1])
    patch = max(1, int(patch))
    gens = list(generators) if generators is not None else [None] * n
    grid = (math.ceil(h / patch), math.ceil(w / patch))
    keep = torch.stack([(_rand(g, 1, *grid) > ratio).float() for g in gens]).to(device)
    return F.interpolate(keep, scale_factor=patch, mode="nearest")[..., :h, :w]
