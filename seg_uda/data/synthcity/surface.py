"""SynthCity surface geometry and shading shared by both styles: per-pixel depth and surface coordinates
recovered from the record-index buffer, and per-record Lambert shading."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from .camera import NEAR, Camera
from .ids import KIND_GROUND, KIND_XPLANE


def pixel_geometry(cam: Camera, buf: np.ndarray, rec: Dict[str, np.ndarray],
                   depth_only: bool = False) -> Dict[str, np.ndarray]:
    """Per-pixel depth (m) and surface coordinates (u, v in metres) from the record-index buffer."""
    H, W = buf.shape
    ys = (np.arange(H, dtype=np.float32) + 0.5)[:, None]
    xs = (np.arange(W, dtype=np.float32) + 0.5)[None, :]
    kind = rec["kind"][buf]
    depth = rec["depth"][buf].copy()
    dy = ys - np.float32(cam.cy)
    z_ground = np.where(dy > 0.5, np.float32(cam.f * cam.h) / np.maximum(dy, 0.5), np.float32(1e4))
    g = kind == KIND_GROUND
    depth[g] = np.broadcast_to(z_ground, (H, W))[g]
    xp = kind == KIND_XPLANE
    if xp.any():
        dx = np.broadcast_to(xs - np.float32(cam.cx), (H, W))[xp]
        plane = rec["plane"][buf[xp]]
        zx = np.float32(cam.f) * plane / np.where(np.abs(dx) < 0.25, np.copysign(0.25, dx), dx)
        depth[xp] = np.where(zx > 0, zx, depth[xp])
    depth = np.clip(depth, NEAR, 1e4).astype(np.float32)
    if depth_only:
        return {"depth": depth}
    inv_f = np.float32(1.0 / cam.f)
    u = (xs - np.float32(cam.cx)) * depth * inv_f
    v = np.float32(cam.h) - dy * depth * inv_f
    u = np.where(xp, depth, u)
    v = np.where(g, depth, v)
    return {"depth": depth, "u": u, "v": v, "ground": g}


def lambert(rec: Dict[str, np.ndarray], light: np.ndarray, ambient: float, diffuse: float) -> np.ndarray:
    """Per-record shading factor from the face normal and a light direction."""
    n = rec["normal"]
    has = np.linalg.norm(n, axis=1) > 0
    nn = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-6)
    lam = np.clip(nn @ light, 0, 1)
    s = np.where(has, ambient + diffuse * lam, 1.0).astype(np.float32)
    return s * rec["shade"]


def unit(v: Sequence[float]) -> np.ndarray:
    """``v`` as a float32 unit vector."""
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)
