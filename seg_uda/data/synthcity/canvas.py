"""SynthCity painter's-algorithm canvas: per-record attribute tables, draw items (polygons, lines, discs in
fixed-point pixels) and the far-to-near rasteriser that writes record indices into one int32 buffer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .camera import Camera
from .ids import KIND_CONST, M, SKY

SHIFT = 4  # fractional bits for sub-pixel rasterisation
_SCALE = float(1 << SHIFT)

N_UP = (0.0, 1.0, 0.0)
N_BACK = (0.0, 0.0, -1.0)
N_NONE = (0.0, 0.0, 0.0)


@dataclass
class Records:
    """Per-primitive attributes, indexed by the value rasterised into the canvas buffer."""

    label: List[int] = field(default_factory=list)
    private: List[int] = field(default_factory=list)
    material: List[int] = field(default_factory=list)
    tone: List[int] = field(default_factory=list)
    normal: List[Tuple[float, float, float]] = field(default_factory=list)
    shade: List[float] = field(default_factory=list)
    depth: List[float] = field(default_factory=list)
    kind: List[int] = field(default_factory=list)
    plane: List[float] = field(default_factory=list)

    def add(self, label: int, material: int, tone: int, normal: Sequence[float], shade: float, depth: float,
            kind: int, plane: float, private: int) -> int:
        self.label.append(label)
        self.private.append(private)
        self.material.append(material)
        self.tone.append(int(tone) & 255)
        self.normal.append(tuple(normal))
        self.shade.append(float(shade))
        self.depth.append(float(depth))
        self.kind.append(kind)
        self.plane.append(float(plane))
        return len(self.label) - 1

    def arrays(self) -> Dict[str, np.ndarray]:
        """Records as numpy lookup tables (one entry per record id)."""
        return {
            "label": np.asarray(self.label, np.uint8),
            "private": np.asarray(self.private, np.uint8),
            "material": np.asarray(self.material, np.uint8),
            "tone": np.asarray(self.tone, np.uint8),
            "normal": np.asarray(self.normal, np.float32).reshape(-1, 3),
            "shade": np.asarray(self.shade, np.float32),
            "depth": np.asarray(self.depth, np.float32),
            "kind": np.asarray(self.kind, np.uint8),
            "plane": np.asarray(self.plane, np.float32),
        }


class Item:
    """One paintable object: an ordered list of draw ops sharing a sort key (layer, depth)."""

    __slots__ = ("canvas", "layer", "z", "ops")

    def __init__(self, canvas: "Canvas", layer: int, z: float) -> None:
        self.canvas, self.layer, self.z, self.ops = canvas, layer, z, []

    def _rec(self, label: int, mat: str, tone: int, normal: Sequence[float], shade: float, depth: Optional[float],
             kind: int, plane: float, private: int) -> int:
        return self.canvas.records.add(label, M[mat], tone, normal, shade, self.z if depth is None else depth,
                                       kind, plane, private)

    def poly(self, polys: Sequence[np.ndarray] | np.ndarray, label: int, mat: str, tone: int = 0,
             normal: Sequence[float] = N_BACK, shade: float = 1.0, depth: Optional[float] = None,
             kind: int = KIND_CONST, plane: float = 0.0, private: int = 0) -> None:
        """Fill one polygon (N, 2), a batch (K, N, 2) or a list of polygons given in pixel coordinates."""
        if len(polys) == 0:
            return
        if isinstance(polys, np.ndarray):
            fixed = _fixed(polys)
            fixed = [fixed] if polys.ndim == 2 else list(fixed)
        else:
            fixed = [_fixed(p) for p in polys]
        rid = self._rec(label, mat, tone, normal, shade, depth, kind, plane, private)
        self.ops.append(("fill", fixed, rid, 0))

    def line(self, pts: np.ndarray | Sequence[np.ndarray], thickness_px: float, label: int, mat: str,
             tone: int = 0, normal: Sequence[float] = N_BACK, shade: float = 1.0, depth: Optional[float] = None,
             closed: bool = False, private: int = 0) -> None:
        """Draw a polyline (or list of polylines) with a pixel thickness (at least 1)."""
        lines = [pts] if isinstance(pts, np.ndarray) and pts.ndim == 2 else list(pts)
        if not lines:
            return
        rid = self._rec(label, mat, tone, normal, shade, depth, KIND_CONST, 0.0, private)
        self.ops.append(("closed" if closed else "open", [_fixed(p) for p in lines], rid,
                         max(1, int(round(thickness_px)))))

    def disc(self, center: np.ndarray, radius_px: float, label: int, mat: str, tone: int = 0,
             normal: Sequence[float] = N_BACK, shade: float = 1.0, depth: Optional[float] = None,
             private: int = 0) -> None:
        """Fill a circle given in pixel coordinates."""
        if radius_px < 0.3:
            return
        n = int(np.clip(radius_px, 8, 24))
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        pts = np.stack([center[0] + radius_px * np.cos(t), center[1] + radius_px * np.sin(t)], axis=-1)
        self.poly(pts, label, mat, tone, normal, shade, depth, private=private)


_LIM = 1.0e6 * _SCALE


def _fixed(p: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> int32 fixed point (SHIFT fractional bits) shaped (..., N, 1, 2) for OpenCV."""
    a = np.asarray(p, np.float64) * _SCALE
    a = np.minimum(np.maximum(a, -_LIM), _LIM)
    a = np.rint(a).astype(np.int32)
    return a.reshape(a.shape[:-1] + (1, 2))


class Canvas:
    """Collects items and rasterises them far-to-near (layer ascending, then depth descending)."""

    def __init__(self, cam: Camera) -> None:
        self.cam = cam
        self.records = Records()
        self.items: List[Item] = []
        # record 0 is the sky, visible wherever nothing else is drawn
        self.records.add(SKY, M["sky"], 0, N_NONE, 1.0, 1.0e4, KIND_CONST, 0.0, 0)

    def item(self, layer: int, z: float) -> Item:
        it = Item(self, layer, float(z))
        self.items.append(it)
        return it

    def rasterize(self) -> np.ndarray:
        """Return the int32 (H, W) record-index buffer."""
        buf = np.zeros((self.cam.height, self.cam.width), np.int32)
        order = sorted(range(len(self.items)), key=lambda i: (self.items[i].layer, -self.items[i].z, i))
        for i in order:
            for op, polys, rid, thick in self.items[i].ops:
                color = (float(rid),)
                if op == "fill":
                    cv2.fillPoly(buf, polys, color, cv2.LINE_8, SHIFT)
                else:
                    cv2.polylines(buf, polys, op == "closed", color, thick, cv2.LINE_8, SHIFT)
        return buf
