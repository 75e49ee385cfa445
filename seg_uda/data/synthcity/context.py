"""SynthCity scene context: the state one scene's painters share (random generator, layout, sampled camera,
canvas, street geometry, tones reused across objects) plus the small helpers they all call."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from .camera import NEAR, Camera, clip_z, quad_y
from .canvas import N_UP, Canvas, Item
from .ids import KIND_GROUND
from .layouts import LAYOUTS, Layout


class SceneContext:
    """Per-scene state. The constructor samples the camera; :func:`road.sample_street` fills the street fields.

    All randomness comes from ``rng``; painters draw from it in a fixed order, so a scene is a pure function of
    the generator state.
    """

    def __init__(self, domain: str, rng: np.random.Generator, width: int, height: int,
                 layout: Optional[Layout] = None) -> None:
        self.domain, self.rng = domain, rng
        self.lay = layout or LAYOUTS[domain]
        lay, r = self.lay, rng
        f = r.uniform(*lay.focal) * width
        cam = Camera(width=width, height=height, f=f, cx=width * (0.5 + r.uniform(-lay.yaw_px, lay.yaw_px)),
                     cy=height * r.uniform(*lay.horizon), h=r.uniform(*lay.cam_height))
        self.cam = cam
        self.canvas = Canvas(cam)
        self.private_frame = r.random() < lay.p_private
        # street geometry (metres), set by road.sample_street
        self.lane_w, self.n_right, self.n_left = 0.0, 0, 0
        self.road_l = self.road_r = self.x_center = self.z_end = 0.0
        #: per side (-1 left, +1 right): road edge x, grass strip and sidewalk widths, boundary distance xb
        self.sides: Dict[int, Dict[str, float]] = {}
        # tones shared by several objects: road asphalt (also crossings, vehicle shadows), road paint,
        # and walls / fences (drawn lazily from rng at the first wall / fence of the scene)
        self.tone_road = self.tone_paint = 0
        self.wall_tone: Optional[int] = None
        self.fence_tone: Optional[int] = None
        #: (z0, z1) of the side-street crossings, appended while the street boundary is sampled
        self.crossings: List[Tuple[float, float]] = []

    def visible(self, z: float, size_m: float) -> bool:
        """Whether an object of ``size_m`` metres at depth ``z`` is in front of the camera and >= 1.2 px."""
        return z > NEAR and size_m * self.cam.scale(z) >= 1.2

    def tone(self) -> int:
        """A random tone (0..255): the style maps (material, tone) to a colour."""
        return int(self.rng.integers(0, 256))

    def ground_quad(self, item: Item, x0: float, x1: float, z0: float, z1: float, label: int, mat: str,
                    tone: int, shade: float = 1.0, y: float = 0.0) -> None:
        """Fill the horizontal rectangle [x0, x1] x [z0, z1] at height ``y`` as ground-plane depth."""
        pts = clip_z(quad_y(y, x0, x1, max(z0, NEAR), z1))
        item.poly(self.cam.project(pts), label, mat, tone, N_UP, shade, z0, KIND_GROUND)
