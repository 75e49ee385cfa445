"""SynthCity pinhole street camera (world metres -> pixels, near-plane clamp) and the world-space rectangle
helpers that the scene painters project through it. World axes: X right, Y up, Z forward; camera at (0, h, 0)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR = 0.6  # near clipping depth (m)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at height ``h`` over flat ground; ``cy`` is the horizon row, ``cx`` the vanishing column."""

    width: int
    height: int
    f: float
    cx: float
    cy: float
    h: float

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Project world points (..., 3) to pixel coordinates (..., 2); depth is clamped to the near plane."""
        pts = np.asarray(pts, dtype=np.float64)
        out = np.empty(pts.shape[:-1] + (2,), np.float64)
        inv = self.f / np.maximum(pts[..., 2], NEAR)
        out[..., 0] = pts[..., 0] * inv
        out[..., 0] += self.cx
        out[..., 1] = (self.h - pts[..., 1]) * inv
        out[..., 1] += self.cy
        return out

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.f / max(z, NEAR)


def quad_x(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a vertical rectangle in the plane X = x."""
    return np.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]], np.float64)


def quad_z(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Corners of a vertical rectangle in the plane Z = z (facing the camera)."""
    return np.array([[x0, y0, z], [x0, y1, z], [x1, y1, z], [x1, y0, z]], np.float64)


def quad_y(y: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a horizontal rectangle at height y."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


def quads_x(x: float, y0: float, y1: float, zs: np.ndarray, width: float) -> np.ndarray:
    """A batch (K, 4, 3) of thin vertical rectangles in the plane X = x starting at depths ``zs``."""
    zs = np.maximum(np.asarray(zs, np.float64), NEAR)
    k = len(zs)
    q = np.empty((k, 4, 3), np.float64)
    q[:, :, 0] = x
    q[:, :, 1] = np.array([y0, y1, y1, y0])
    q[:, :, 2] = zs[:, None] + np.array([0.0, 0.0, width, width])
    return q


def clip_z(pts: np.ndarray) -> np.ndarray:
    """A copy of world points with depth clamped to the near plane."""
    pts = pts.copy()
    pts[..., 2] = np.maximum(pts[..., 2], NEAR)
    return pts
