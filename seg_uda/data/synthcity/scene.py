"""SynthCity scene sampler: :class:`SceneBuilder` samples one street scene by calling the concept painters in a
fixed order (the order of random draws, so of the output bytes), and :func:`build_scene` rasterises it.

The painters place 3-D street furniture (roads, facades, cars, people, poles, ...) in metric world coordinates
and project it through a pinhole camera (``camera.py``). Every drawn primitive is a *record* (label id, private
id, material, tone, normal, shading, depth model); the canvas (``canvas.py``) rasterises record indices into
one int32 buffer far-to-near, so labels are exact and the domain style (``style.py``) colours pixels afterwards.
World axes: X right, Y up, Z forward (metres); the camera sits at (0, h, 0) looking along +Z.

Modules: ``ids`` (label / private / material ids), ``layouts`` (per-domain statistics), ``context`` (per-scene
state), ``road``, ``boundary``, ``buildings``, ``vegetation``, ``barriers``, ``furniture``, ``people``,
``vehicles``, ``private_objects``. The names below are re-exported so ``synthcity.scene`` keeps its public API.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from .boundary import street_boundary
from .buildings import backdrop
from .camera import NEAR, Camera, quad_x, quad_y, quad_z
from .canvas import N_BACK, N_NONE, N_UP, SHIFT, Canvas, Item, Records
from .context import SceneContext
from .furniture import furniture
from .ids import (BICYCLE, BUILDING, BUS, CAR, EGO_VEHICLE, FENCE, KIND_CONST, KIND_GROUND, KIND_XPLANE, M,
                  MATERIALS, MOTORCYCLE, PERSON, POLE, PRIVATE_ANIMAL, PRIVATE_CLASSES, PRIVATE_NONE,
                  PRIVATE_TUKTUK, RIDER, ROAD, SIDEWALK, SKY, TERRAIN, TRAFFIC_LIGHT, TRAFFIC_SIGN, TRAIN, TRUCK,
                  UNLABELED, VEGETATION, WALL)
from .layouts import LAYOUTS, Layout
from .private_objects import private_objects
from .road import paint_ground, sample_street
from .vegetation import noisy_blob
from .vehicles import ego_hood, traffic, tram

__all__ = [
    "UNLABELED", "EGO_VEHICLE", "ROAD", "SIDEWALK", "BUILDING", "WALL", "FENCE", "POLE", "TRAFFIC_LIGHT",
    "TRAFFIC_SIGN", "VEGETATION", "TERRAIN", "SKY", "PERSON", "RIDER", "CAR", "TRUCK", "BUS", "TRAIN",
    "MOTORCYCLE", "BICYCLE", "PRIVATE_NONE", "PRIVATE_ANIMAL", "PRIVATE_TUKTUK", "PRIVATE_CLASSES", "MATERIALS",
    "M", "KIND_CONST", "KIND_GROUND", "KIND_XPLANE", "NEAR", "SHIFT", "N_UP", "N_BACK", "N_NONE", "Camera",
    "Layout", "LAYOUTS", "Records", "Item", "Canvas", "quad_x", "quad_y", "quad_z", "noisy_blob",
    "SceneContext", "SceneBuilder", "build_scene",
]


class SceneBuilder(SceneContext):
    """Samples one street scene for a domain layout and paints it on a :class:`Canvas`."""

    def build(self) -> Canvas:
        """Sample the street, then paint ground, boundaries, backdrop, furniture, traffic and extras in order."""
        r, lay = self.rng, self.lay
        sample_street(self)
        paint_ground(self)
        for side in (-1, 1):
            street_boundary(self, side)
        backdrop(self)
        for side in (-1, 1):
            furniture(self, side)
        traffic(self)
        if r.random() < lay.p_tram:
            tram(self)
        if self.private_frame:
            private_objects(self)
        if r.random() < lay.p_ego:
            ego_hood(self)
        return self.canvas


def build_scene(domain: str, rng: np.random.Generator, width: int, height: int) -> Tuple[Camera, np.ndarray,
                                                                                         Dict[str, np.ndarray]]:
    """Sample and rasterise one scene: returns (camera, int32 record-index buffer, record tables)."""
    if domain not in LAYOUTS:
        raise ValueError(f"unknown SynthCity domain '{domain}'; valid: {sorted(LAYOUTS)}")
    builder = SceneBuilder(domain, rng, width, height)
    canvas = builder.build()
    return builder.cam, canvas.rasterize(), canvas.records.arrays()
