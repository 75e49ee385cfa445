"""Inference helpers: whole-image or sliding-window prediction with flip / multi-scale averaging and ensembles.

Model interface: ``model(x) -> {"out": logits[N, K, h, w], ...}`` with logits at feature resolution. Logits are
upsampled bilinearly with ``align_corners=True`` to the ground-truth size (as ADVENT's evaluation does), turned
into softmax probabilities and averaged over flips and scales. Callers put the model in ``eval()`` mode.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

Size2 = Union[int, Tuple[int, int], Sequence[int]]


def _pair(value: Size2, name: str) -> Tuple[int, int]:
    if isinstance(value, int):
        out = (value, value)
    else:
        out = tuple(int(v) for v in value)
        if len(out) != 2:
            raise ValueError(f"{name} must be an int or (height, width), got {value!r}")
    if min(out) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return out  # type: ignore[return-value]


def _forward(model: nn.Module, x: torch.Tensor, num_classes: Optional[int]) -> torch.Tensor:
    """Run the segmenter and return its ``"out"`` logits, checking the interface."""
    out = model(x)
    if not isinstance(out, dict) or "out" not in out:
        keys = list(out.keys()) if isinstance(out, dict) else type(out).__name__
        raise TypeError(f"model must return a dict with an 'out' logits tensor, got {keys}")
    logits = out["out"]
    if logits.dim() != 4 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"model 'out' must be [N, K, h, w] with N={x.shape[0]}, got {tuple(logits.shape)}")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(f"model 'out' has {logits.shape[1]} channels, expected num_classes={num_classes}")
    return logits.float()


def _resize_logits(logits: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


def _window_starts(length: int, crop: int, stride: int) -> list:
    """Window start offsets covering [0, length): every `stride`, the last one flush with the border."""
    if length <= crop:
        return [0]
    n = math.ceil((length - crop) / stride) + 1
    return [min(i * stride, length - crop) for i in range(n)]


def _slide_logits(
    model: nn.Module,
    x: torch.Tensor,
    crop_size: Tuple[int, int],
    stride: Tuple[int, int],
    num_classes: Optional[int],
) -> torch.Tensor:
    """Logits at input resolution from overlapping windows; overlaps are averaged (as mmsegmentation does)."""
    n, _, h, w = x.shape
    ch, cw = min(crop_size[0], h), min(crop_size[1], w)
    acc: Optional[torch.Tensor] = None
    count = x.new_zeros((1, 1, h, w))
    for y0 in _window_starts(h, ch, stride[0]):
        for x0 in _window_starts(w, cw, stride[1]):
            crop = x[:, :, y0 : y0 + ch, x0 : x0 + cw]
            logits = _resize_logits(_forward(model, crop, num_classes), (ch, cw))
            if acc is None:
                acc = x.new_zeros((n, logits.shape[1], h, w), dtype=torch.float32)
            acc[:, :, y0 : y0 + ch, x0 : x0 + cw] += logits
            count[:, :, y0 : y0 + ch, x0 : x0 + cw] += 1
    assert acc is not None
    return acc / count


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    image: torch.Tensor,
    out_size: Size2,
    mode: str = "whole",
    crop_size: Optional[Size2] = None,
    stride: Optional[Size2] = None,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    num_classes: Optional[int] = None,
) -> torch.Tensor:
    """Softmax probabilities [N, K, H_out, W_out] averaged over ``scales`` x (no flip, horizontal flip).

    ``mode="whole"`` feeds the full (rescaled) image; ``mode="slide"`` feeds ``crop_size`` windows every
    ``stride`` pixels (default 2/3 of the crop) and averages overlapping logits before upsampling.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be [N, C, H, W], got shape {tuple(image.shape)}")
    out_hw = _pair(out_size, "out_size")
    if mode not in ("whole", "slide"):
        raise ValueError(f"mode must be 'whole' or 'slide', got {mode!r}")
    if mode == "slide":
        if crop_size is None:
            raise ValueError("mode='slide' needs crop_size")
        crop = _pair(crop_size, "crop_size")
        step = _pair(stride, "stride") if stride is not None else (max(1, crop[0] * 2 // 3), max(1, crop[1] * 2 // 3))
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {scales!r}")

    h, w = image.shape[-2:]
    probs: Optional[torch.Tensor] = None
    passes = 0
    for scale in scales:
        if scale == 1.0:
            x_s = image
        else:
            size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
            x_s = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        for flipped in (False, True) if flip else (False,):
            x = torch.flip(x_s, dims=[3]) if flipped else x_s
            if mode == "whole":
                logits = _forward(model, x, num_classes)
            else:
                logits = _slide_logits(model, x, crop, step, num_classes)
            logits = _resize_logits(logits, out_hw)
            if flipped:
                logits = torch.flip(logits, dims=[3])
            p = torch.softmax(logits, dim=1)
            probs = p if probs is None else probs + p
            passes += 1
    assert probs is not None
    return probs / passes if passes > 1 else probs


def predict_logits(model: nn.Module, image: torch.Tensor, out_size: Size2, **kwargs) -> torch.Tensor:
    """Log of :func:`predict_probs` (same arguments): scores whose softmax / argmax are the averaged prediction.

    Without flips / extra scales this equals ``log_softmax`` of the upsampled model logits.
    """
    return torch.log(predict_probs(model, image, out_size, **kwargs).clamp_min(torch.finfo(torch.float32).tiny))


def _normalized_weights(weights: Optional[Sequence[float]], n_models: int) -> list:
    if n_models < 1:
        raise ValueError("ensemble needs at least one model")
    if weights is None:
        return [1.0 / n_models] * n_models
    w = [float(v) for v in weights]
    if len(w) != n_models:
        raise ValueError(f"got {len(w)} ensemble weights for {n_models} models")
    if any(not math.isfinite(v) or v < 0 for v in w):
        raise ValueError(f"ensemble weights must be finite and non-negative, got {w}")
    total = sum(w)
    if total <= 0:
        raise ValueError(f"ensemble weights must not all be zero, got {w}")
    return [v / total for v in w]


@torch.no_grad()
def ensemble_predict(
    models: Sequence[nn.Module],
    weights: Optional[Sequence[float]],
    image: torch.Tensor,
    out_size: Size2,
    fuse: str = "prob",
    **kwargs,
) -> torch.Tensor:
    """Weighted average of the members' probabilities [N, K, H_out, W_out] (weights normalised to sum 1).

    ``fuse="prob"`` averages softmax probabilities; ``fuse="logit"`` averages :func:`predict_logits` outputs
    and returns their softmax (ADVENT's released ``eval_UDA.py`` sums weighted upsampled logits).
    Other keyword arguments go to :func:`predict_probs`; members with weight 0 are not run.
    """
    if fuse not in ("prob", "logit"):
        raise ValueError(f"fuse must be 'prob' or 'logit', got {fuse!r}")
    w = _normalized_weights(weights, len(models))
    fused: Optional[torch.Tensor] = None
    for model, weight in zip(models, w):
        if weight == 0.0:
            continue
        if fuse == "prob":
            part = predict_probs(model, image, out_size, **kwargs)
        else:
            part = predict_logits(model, image, out_size, **kwargs)
        fused = weight * part if fused is None else fused + weight * part
    assert fused is not None
    return fused if fuse == "prob" else torch.softmax(fused, dim=1)


@dataclass
class InferenceOptions:
    """How each image is predicted: whole / sliding window, flips, scales (see ``inference.predict_probs``)."""

    mode: str = "whole"
    crop_size: Optional[Tuple[int, int]] = None  # (height, width) windows for mode="slide"
    stride: Optional[Tuple[int, int]] = None  # (height, width); default 2/3 of the crop
    flip: bool = False
    scales: Sequence[float] = field(default_factory=lambda: (1.0,))

    def kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``predict_probs`` / ``ensemble_predict``."""
        if self.mode not in ("whole", "slide"):
            raise ValueError(f"inference mode must be 'whole' or 'slide', got {self.mode!r}")
        if self.mode == "slide" and self.crop_size is None:
            raise ValueError("inference mode 'slide' needs a crop size")
        return {"mode": self.mode, "crop_size": self.crop_size, "stride": self.stride, "flip": self.flip,
                "scales": tuple(self.scales)}


def autocast_context(device: torch.device, amp: Optional[str]) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for amp 'bf16' / 'fp16' (CUDA only), or a no-op for None / 'none'."""
    if amp in (None, "none"):
        return contextlib.nullcontext()
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp 'fp16' needs CUDA; use 'bf16' on the CPU")
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {amp!r}")


@torch.no_grad()
def class_argmax(probs: torch.Tensor) -> torch.Tensor:
    """The predicted class per pixel of [N, C, H, W] scores: ``argmax(1)`` (the first maximum), computed as
    ``max(1).indices``, which gives the same index about 2.5x faster over the class dim on CPU."""
    return probs.max(1).indices


def predict_sample_probs(
    models: Sequence[nn.Module],
    image: torch.Tensor,
    out_size: Tuple[int, int],
    weights: Optional[Sequence[float]] = None,
    fuse: str = "prob",
    options: Optional[InferenceOptions] = None,
    amp: Optional[str] = None,
) -> torch.Tensor:
    """Fused softmax probabilities [N, K, H, W] of ``models`` for a normalized image batch, at ``out_size``.
    The models predict in eval mode and are left in the mode they were in (a training model stays in training)."""
    opts = options or InferenceOptions()
    device = next(models[0].parameters()).device
    x = image.to(device)
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        with autocast_context(device, amp):
            probs = ensemble_predict(models, weights, x, out_size, fuse=fuse, **opts.kwargs())
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
    return probs.float()
