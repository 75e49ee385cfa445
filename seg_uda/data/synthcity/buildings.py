"""SynthCity buildings: street facades (windows, shop fronts, doors, cornices, awnings) in planes X = const and
the backdrop across the far end of the street (facades, or a tree line on an open horizon)."""
from __future__ import annotations

import numpy as np

from .camera import NEAR, clip_z, quad_x, quad_z
from .canvas import N_BACK
from .context import SceneContext
from .ids import BUILDING, KIND_XPLANE, VEGETATION


def building(sc: SceneContext, side: int, xb: float, z0: float, z1: float, deep: bool) -> None:
    """A building facing the street at |x| = ``xb`` from z0 to z1; ``deep``: a deeper front-end face."""
    r, cam = sc.rng, sc.cam
    X = side * xb
    H = float(r.choice([r.uniform(6, 12), r.uniform(12, 22), r.uniform(22, 40)], p=[0.35, 0.45, 0.2]))
    zc0 = max(z0, NEAR)
    if z1 <= NEAR:
        return
    it = sc.canvas.item(2, zc0)
    tone = sc.tone()
    nrm = (-float(side), 0.0, 0.0)
    # front-end face (visible next to gaps/parks/crossings or setbacks)
    if z0 > NEAR:
        D = r.uniform(30, 70) if deep else r.uniform(8, 20)
        it.poly(cam.project(quad_z(z0, min(X, X + side * D), max(X, X + side * D), 0, H)), BUILDING, "facade",
                tone, N_BACK, 1.0, z0)
    it.poly(cam.project(clip_z(quad_x(X, 0, H, zc0, z1))), BUILDING, "facade", tone, nrm, 1.0, zc0,
            KIND_XPLANE, X)
    # roof-line cornice
    it.poly(cam.project(clip_z(quad_x(X, H - 0.5, H, zc0, z1))), BUILDING, "roof", sc.tone(), nrm, 0.9,
            zc0, KIND_XPLANE, X)
    # windows: floors x columns, vectorised
    fh = r.uniform(2.9, 3.6)
    ww, wh = r.uniform(0.9, 1.6), r.uniform(1.2, 1.8)
    step = ww + r.uniform(0.8, 2.2)
    ground_shop = r.random() < 0.55
    floors = np.arange(1 if ground_shop else 0, int((H - 1.0) // fh))
    cols = np.arange(max(z0, 0.5) + r.uniform(0.5, step), z1 - ww, step)
    if len(floors) and len(cols):
        yy = (floors * fh + r.uniform(0.8, 1.2))[:, None]
        zz = cols[None, :]
        yy, zz = np.broadcast_arrays(yy, zz)
        yy, zz = yy.ravel(), zz.ravel()
        keep = (zz > NEAR + 0.5) & (ww * cam.f / np.maximum(zz, NEAR) > 0.8)
        yy, zz = yy[keep], zz[keep]
        if len(yy):
            corners = np.stack([
                np.stack([np.full_like(yy, X), yy, zz], -1),
                np.stack([np.full_like(yy, X), yy + wh, zz], -1),
                np.stack([np.full_like(yy, X), yy + wh, zz + ww], -1),
                np.stack([np.full_like(yy, X), yy, zz + ww], -1)], axis=1)
            proj = cam.project(corners)
            lit = r.random(len(yy)) < 0.25
            gtone = sc.tone() % 200  # unlit glass tones < 200
            if (~lit).any():
                it.poly(proj[~lit], BUILDING, "glass", gtone, nrm, 1.0, zc0, KIND_XPLANE, X)
            if lit.any():
                it.poly(proj[lit], BUILDING, "glass", 200 + gtone % 56, nrm, 1.0, zc0, KIND_XPLANE, X)
    if ground_shop:
        shops, doors = [], []
        zz = max(z0, 1.0) + r.uniform(0.3, 2)
        while zz < z1 - 2:
            w = r.uniform(2, 5)
            if r.random() < 0.7:
                shops.append(cam.project(clip_z(quad_x(X, 0.4, min(2.6, fh - 0.3), zz, min(zz + w, z1 - 0.5)))))
            else:
                doors.append(cam.project(clip_z(quad_x(X, 0.0, 2.2, zz, zz + 1.2))))
            zz += w + r.uniform(0.5, 2)
        it.poly(shops, BUILDING, "shopfront", sc.tone(), nrm, 1.0, zc0, KIND_XPLANE, X)
        it.poly(doors, BUILDING, "door", sc.tone(), nrm, 1.0, zc0, KIND_XPLANE, X)
    # awning / sign band sometimes
    if ground_shop and r.random() < 0.4:
        it.poly(cam.project(clip_z(quad_x(X - side * 0.05, 2.7, 3.2, zc0, z1))), BUILDING, "facade",
                sc.tone(), nrm, 1.1, zc0, KIND_XPLANE, X)


def backdrop(sc: SceneContext) -> None:
    """Buildings across the far end of the street (or open horizon)."""
    r, cam = sc.rng, sc.cam
    if sc.z_end > 1000:
        # distant tree line / skyline on the horizon
        it = sc.canvas.item(1, 1500)
        if r.random() < 0.5:
            xs = np.linspace(-1500, 1500, 40)
            hs = r.uniform(8, 30, len(xs))
            pts = np.concatenate([np.stack([xs, hs, np.full_like(xs, 1500)], -1),
                                  np.array([[1500, 0, 1500], [-1500, 0, 1500]])])
            it.poly(cam.project(pts), VEGETATION, "foliage", sc.tone(), N_BACK, 0.85, 1500)
        return
    z = sc.z_end
    x = -150.0
    while x < 150:
        w = r.uniform(8, 30)
        it = sc.canvas.item(1, z)
        H = r.uniform(8, 35)
        it.poly(cam.project(quad_z(z + r.uniform(0, 6), x, x + w, 0, H)), BUILDING, "facade", sc.tone(),
                N_BACK, 1.0, z)
        x += w
