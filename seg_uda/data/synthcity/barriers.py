"""SynthCity walls and fences: segments in a vertical plane X = const along park boundaries and curbs; each
scene draws one wall tone and one fence tone (the fence tone also picks the fence style)."""
from __future__ import annotations

from typing import List

import numpy as np

from .camera import NEAR, clip_z, quad_x, quad_y, quads_x
from .canvas import N_UP, Item
from .context import SceneContext
from .ids import FENCE, KIND_GROUND, KIND_XPLANE, WALL


def wall(sc: SceneContext, it: Item, X: float, za: float, zb: float, h: float, side: int) -> None:
    """A wall segment of height ``h`` from za to zb in the plane X = ``X`` (and its top if below the eye)."""
    cam = sc.cam
    tone = sc.wall_tone
    if tone is None:
        tone = sc.wall_tone = sc.tone()
    nrm = (-float(side), 0.0, 0.0)
    it.poly(cam.project(clip_z(quad_x(X, 0, h, za, zb))), WALL, "concrete", tone, nrm, 1.0, za, KIND_XPLANE, X)
    if h < cam.h:
        it.poly(cam.project(clip_z(quad_y(h, min(X, X + side * 0.3), max(X, X + side * 0.3), za, zb))), WALL,
                "concrete", tone, N_UP, 1.15, za, KIND_GROUND)


def fence(sc: SceneContext, it: Item, X: float, za: float, zb: float, h: float, side: int) -> None:
    """A fence segment of height ``h``: posts, two rails and (one style in three) dense vertical bars."""
    cam = sc.cam
    tone = sc.fence_tone
    if tone is None:
        tone = sc.fence_tone = sc.tone()
    style = tone % 3
    posts = list(cam.project(quads_x(X, 0.0, h, np.arange(za, zb, 2.5), 0.1)))
    rails = [cam.project(clip_z(quad_x(X, y, y + 0.06, za, zb))) for y in (0.15, h - 0.08)]
    bars: List[np.ndarray] = []
    if style == 0:  # dense vertical bars
        zs = np.arange(za, zb, 0.14)
        bars = list(cam.project(quads_x(X, 0.1, h, zs[zs > 2], 0.04)))
        if za <= 2:
            bars.append(cam.project(clip_z(quad_x(X, 0.1, h, NEAR, 2))))
    nrm = (-float(side), 0.0, 0.0)
    it.poly(posts + rails + bars, FENCE, "fence", tone, nrm, 1.0, za, KIND_XPLANE, X)
