"""SynthCity vegetation: street and park trees (trunk plus rough foliage blobs, with level of detail) and the
hedges that bound parks."""
from __future__ import annotations

import numpy as np

from .camera import quad_y
from .canvas import N_BACK, N_UP, Item
from .context import SceneContext
from .ids import KIND_GROUND, KIND_XPLANE, VEGETATION


def noisy_blob(cx: float, cy: float, rx: float, ry: float, rng: np.random.Generator, n: int = 14,
               rough: float = 0.18) -> np.ndarray:
    """A rough ellipse (foliage crowns, hedges) as an (n, 2) pixel polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 0.4)
    r = 1.0 + rough * rng.standard_normal(n)
    return np.stack([cx + rx * r * np.cos(t), cy + ry * r * np.sin(t)], axis=-1)


def tree(sc: SceneContext, item: Item, x: float, z: float, height: float, crown: float) -> None:
    """A tree at (x, z): trunk and 1-4 noisy foliage blobs of radius ``crown`` (m), ``height`` (m) tall."""
    cam, r = sc.cam, sc.rng
    if not sc.visible(z, 0.3):
        return
    s = cam.scale(z)
    base = cam.project(np.array([x, 0.0, z]))
    top = cam.project(np.array([x, height, z]))
    tw = max(0.25 * s, 1.0)
    trunk_top = base[1] + 0.55 * (top[1] - base[1])
    item.poly(np.array([[base[0] - tw / 2, base[1]], [base[0] - tw / 3, trunk_top], [base[0] + tw / 3, trunk_top],
                        [base[0] + tw / 2, base[1]]]), VEGETATION, "bark", sc.tone(), N_BACK, 1.0, z)
    cy = top[1] + crown * s * 0.9
    tone = sc.tone()
    n_blobs = int(r.integers(2, 5)) if crown * s >= 8 else 1  # level of detail
    blobs = [noisy_blob(base[0] + r.uniform(-0.4, 0.4) * crown * s, cy + r.uniform(-0.3, 0.4) * crown * s,
                        crown * s * r.uniform(0.6, 1.0), crown * s * r.uniform(0.55, 0.9), r)
             for _ in range(n_blobs)]
    for k, b in enumerate(blobs):
        item.poly(b, VEGETATION, "foliage", tone, (0.0, 0.3 - 0.2 * k, -1.0), 1.0 - 0.07 * k, z)


def hedge(sc: SceneContext, it: Item, X: float, za: float, zb: float, side: int) -> None:
    """A hedge segment in the plane X = ``X`` from za to zb with a ragged top (and its top face if below the eye)."""
    r, cam = sc.rng, sc.cam
    nrm = (-float(side), 0.0, 0.0)
    h = r.uniform(0.9, 1.8)
    n = 10
    zs = np.linspace(za, zb, n)
    top = h + 0.12 * r.standard_normal(n)
    pts = np.concatenate([np.stack([np.full(n, X), top, zs], -1),
                          np.array([[X, 0, zb], [X, 0, za]])])
    it.poly(cam.project(pts), VEGETATION, "foliage", sc.tone(), nrm, 0.9, za, KIND_XPLANE, X)
    if h < cam.h:
        it.poly(cam.project(quad_y(h, min(X, X + side), max(X, X + side), za, zb)), VEGETATION,
                "foliage", sc.tone(), N_UP, 1.1, za, KIND_GROUND)
