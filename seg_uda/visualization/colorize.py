"""Image colouring: label maps in the Cityscapes palette, error maps, heatmaps and mask overlays (uint8 RGB)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..data.labels import IGNORE_INDEX

RGB = Tuple[int, int, int]

IGNORE_COLOR: RGB = (128, 128, 128)
"""Grey: ground-truth pixels that are not evaluated (train id 255) in label and error panels."""
ERROR_COLOR: RGB = (255, 255, 0)
"""Yellow: wrongly predicted pixels in the error panel (not a Cityscapes class colour)."""
CORRECT_COLOR: RGB = (0, 0, 0)
"""Black: correctly predicted pixels in the error panel."""
UNKNOWN_COLOR: RGB = (255, 0, 255)
"""Magenta: overlay of pixels flagged as unknown (open-set)."""


def _int_map(ids: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must be a 2-D integer map, got shape {arr.shape} dtype {arr.dtype}")
    return arr


def colorize_labels(
    ids: np.ndarray, palette: Sequence[Sequence[int]], ignore_color: RGB = IGNORE_COLOR,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """HxW train ids -> HxWx3 uint8 in ``palette``;
    ``ignore_index`` and ids outside the palette get ``ignore_color``."""
    arr = _int_map(ids, "label map").astype(np.int64)
    pal = np.asarray(palette, dtype=np.uint8)
    if pal.ndim != 2 or pal.shape[1] != 3:
        raise ValueError(f"palette must be a list of RGB triples, got shape {pal.shape}")
    table = np.zeros((len(pal) + 1, 3), dtype=np.uint8)
    table[: len(pal)] = pal
    table[len(pal)] = ignore_color
    idx = np.where((arr >= 0) & (arr < len(pal)) & (arr != ignore_index), arr, len(pal))
    return table[idx]


def error_map(pred: np.ndarray, gt: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """HxWx3: ``ERROR_COLOR`` where pred != gt, ``CORRECT_COLOR`` where equal, ``IGNORE_COLOR`` where gt is ignored."""
    p, g = _int_map(pred, "prediction"), _int_map(gt, "ground truth")
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} != ground-truth shape {g.shape}")
    out = np.empty(p.shape + (3,), dtype=np.uint8)
    out[...] = CORRECT_COLOR
    out[p != g] = ERROR_COLOR
    out[g == ignore_index] = IGNORE_COLOR
    return out


def heatmap(values: np.ndarray, cmap: str = "inferno", vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """HxW floats -> HxWx3 uint8 through a matplotlib colormap, clipped to [vmin, vmax]."""
    import matplotlib

    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"heatmap values must be 2-D, got shape {v.shape}")
    if not vmax > vmin:
        raise ValueError(f"heatmap needs vmax > vmin, got [{vmin}, {vmax}]")
    norm = np.clip((np.nan_to_num(v, nan=vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    rgba = matplotlib.colormaps[cmap](norm)
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay_mask(
    rgb: np.ndarray, mask: Optional[np.ndarray], color: RGB = UNKNOWN_COLOR, alpha: float = 0.6
) -> np.ndarray:
    """Blend ``color`` into ``rgb`` (HxWx3 uint8) where ``mask`` is True; other pixels are returned unchanged."""
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"overlay needs an HxWx3 uint8 image, got shape {img.shape} dtype {img.dtype}")
    out = img.copy()
    if mask is None:
        return out
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[:2]:
        raise ValueError(f"mask shape {m.shape} != image size {img.shape[:2]}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    blended = (1.0 - alpha) * img[m].astype(np.float64) + alpha * np.asarray(color, dtype=np.float64)
    out[m] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
