"""Per-image panels: input | prediction | ground truth | error | entropy, with an optional unknown-pixel overlay.

Uncertainty comes from the softmax: normalized entropy (what ADVENT minimizes) and the maximum softmax
probability (MSP). Open-set models either have a (K+1)-th "unknown" channel or are thresholded on a score.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..data.labels import IGNORE_INDEX
from .colorize import UNKNOWN_COLOR, colorize_labels, error_map, heatmap, overlay_mask

ArrayLike = Union[np.ndarray, torch.Tensor]
UNKNOWN_SCORES = ("msp", "entropy")


def _probs_array(probs: ArrayLike) -> np.ndarray:
    p = probs.detach().float().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs, np.float64)
    if p.ndim == 4 and p.shape[0] == 1:
        p = p[0]
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"probabilities must be [K, H, W] (or [1, K, H, W]), got shape {p.shape}")
    return p


def normalized_entropy(probs: ArrayLike) -> np.ndarray:
    """Per-pixel entropy of softmax probabilities [K, H, W] divided by log K, so values lie in [0, 1]."""
    p = _probs_array(probs).astype(np.float64)
    k = p.shape[0]
    if k == 1:
        return np.zeros(p.shape[1:], dtype=np.float64)
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.clip(-plogp.sum(axis=0) / math.log(k), 0.0, 1.0)


def unknown_mask_from_probs(probs: ArrayLike, score: str, threshold: float) -> np.ndarray:
    """Pixels flagged unknown: ``msp`` -> max softmax probability < threshold; ``entropy`` -> normalized
    entropy > threshold."""
    p = _probs_array(probs)
    if score == "msp":
        return p.max(axis=0) < threshold
    if score == "entropy":
        return normalized_entropy(p) > threshold
    raise ValueError(f"unknown score must be one of {UNKNOWN_SCORES}, got {score!r}")


def prediction_and_unknown(
    probs: ArrayLike,
    num_known: Optional[int] = None,
    unknown_score: Optional[str] = None,
    unknown_threshold: Optional[float] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(HxW prediction over the known classes, HxW bool unknown mask or None).

    With ``num_known`` = K and K+1 channels the last channel is *unknown*: those argmax pixels form the mask
    and the prediction is the argmax over the K known channels. ``unknown_score``/``unknown_threshold``
    additionally flag low-confidence pixels (union of both masks).
    """
    p = _probs_array(probs)
    unknown: Optional[np.ndarray] = None
    if num_known is not None and p.shape[0] == num_known + 1:
        unknown = p.argmax(axis=0) == num_known
        known = p[:num_known]
    elif num_known is not None and p.shape[0] != num_known:
        raise ValueError(f"probabilities have {p.shape[0]} channels; expected {num_known} or {num_known + 1}")
    else:
        known = p
    pred = known.argmax(axis=0).astype(np.int64)
    if unknown_score is not None:
        if unknown_threshold is None:
            raise ValueError("unknown_score needs unknown_threshold")
        extra = unknown_mask_from_probs(p, unknown_score, unknown_threshold)
        unknown = extra if unknown is None else (unknown | extra)
    return pred, unknown


def _resize_rgb(image: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    import cv2

    if image.shape[:2] == tuple(size_hw):
        return image
    return cv2.resize(image, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)


def sample_tiles(
    image: np.ndarray,
    probs: ArrayLike,
    palette: Sequence[Sequence[int]],
    gt: Optional[np.ndarray] = None,
    unknown: Optional[np.ndarray] = None,
    pred: Optional[np.ndarray] = None,
    ignore_index: int = IGNORE_INDEX,
    unknown_color: Tuple[int, int, int] = UNKNOWN_COLOR,
) -> "OrderedDict[str, np.ndarray]":
    """Named HxWx3 uint8 tiles at the probability map's size: input, prediction (unknown overlaid),
    ground_truth + error (when ``gt`` is given), entropy.

    ``image`` is RGB uint8 (resized to the prediction size); ``pred`` defaults to the argmax of ``probs``.
    """
    p = _probs_array(probs)
    hw = p.shape[1:]
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got shape {img.shape} dtype {img.dtype}")
    pred_map = p.argmax(axis=0) if pred is None else np.asarray(pred)
    if pred_map.shape != hw:
        raise ValueError(f"prediction shape {pred_map.shape} != probability map size {hw}")
    tiles: "OrderedDict[str, np.ndarray]" = OrderedDict()
    tiles["input"] = _resize_rgb(img, hw)
    tiles["prediction"] = overlay_mask(colorize_labels(pred_map, palette, ignore_index=ignore_index), unknown,
                                       unknown_color)
    if gt is not None:
        g = np.asarray(gt)
        if g.shape != hw:
            raise ValueError(f"ground-truth shape {g.shape} != prediction size {hw}")
        tiles["ground_truth"] = colorize_labels(g, palette, ignore_index=ignore_index)
        tiles["error"] = error_map(pred_map, g, ignore_index)
    tiles["entropy"] = heatmap(normalized_entropy(p))
    return tiles


CAPTION_HEIGHT = 20  # pixels of the caption strip `compose_row(..., captions=True)` puts above each tile


def caption_tile(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a dark strip on top holding ``text`` (underscores as spaces), so a PNG explains itself."""
    import cv2

    h, w = tile.shape[:2]
    strip = np.full((CAPTION_HEIGHT, w, 3), 40, dtype=np.uint8)
    text = text.replace("_", " ")
    scale = 0.45
    while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > w - 6:
        scale -= 0.05
    cv2.putText(strip, text, (3, CAPTION_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([strip, np.asarray(tile, dtype=np.uint8)], axis=0)


def compose_row(tiles: Union[Sequence[np.ndarray], Dict[str, np.ndarray]], captions: bool = False) -> np.ndarray:
    """Concatenate same-height HxWx3 tiles left to right (panel width = sum of tile widths); with ``captions``
    (named tiles only), each tile gets its name written in a strip above it (`caption_tile`)."""
    if captions:
        if not isinstance(tiles, dict):
            raise ValueError("compose_row(captions=True) needs named tiles (a dict)")
        tiles = {name: caption_tile(t, name) for name, t in tiles.items()}
    arrs = list(tiles.values()) if isinstance(tiles, dict) else list(tiles)
    if not arrs:
        raise ValueError("compose_row needs at least one tile")
    heights = {a.shape[0] for a in arrs}
    if len(heights) != 1:
        raise ValueError(f"tiles have different heights: {sorted(heights)}")
    return np.concatenate(arrs, axis=1)


def save_rgb_png(path: Union[str, Path], rgb: np.ndarray) -> Path:
    """Write an HxWx3 uint8 RGB image as PNG (creating the folder)."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb)).save(p)
    return p
