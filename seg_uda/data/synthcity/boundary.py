"""SynthCity street boundary: the sequence of building / park / side-street segments along each side of the
street, and the parks (grass, footpath, trees, a building behind, hedge / wall / fence edge)."""
from __future__ import annotations

import numpy as np

from .barriers import fence, wall
from .buildings import building
from .camera import NEAR, clip_z, quad_x
from .context import SceneContext
from .ids import BUILDING, KIND_XPLANE, SIDEWALK, TERRAIN
from .road import crossing
from .vegetation import hedge, tree


def street_boundary(sc: SceneContext, side: int) -> None:
    """Fill one side of the street (up to the street end, at most 260 m) with boundary segments."""
    r, lay = sc.rng, sc.lay
    s = sc.sides[side]
    z, zmax = r.uniform(-15, 2), min(sc.z_end, 260.0)
    prev = "building"
    while z < zmax:
        p = np.array([lay.p_building, lay.p_park, lay.p_crossing])
        kind = r.choice(["building", "park", "crossing"], p=p / p.sum())
        if kind == "crossing" and (prev == "crossing" or z < 8):
            kind = "building"
        if kind == "building":
            length = r.uniform(10, 45)
            building(sc, side, s["xb"] + (r.uniform(0, 2.0) if r.random() < 0.3 else 0.0), z, z + length,
                     deep=prev in ("crossing", "park"))
        elif kind == "park":
            length = r.uniform(15, 50)
            park(sc, side, s["xb"], z, z + length)
        else:
            length = r.uniform(9, 16)
            crossing(sc, side, z, z + length)
        z += length
        prev = kind


def park(sc: SceneContext, side: int, xb: float, z0: float, z1: float) -> None:
    """A park behind the sidewalk at |x| = ``xb`` from z0 to z1."""
    r, cam = sc.rng, sc.cam
    if z1 <= NEAR:
        return
    X = side * xb
    g = sc.canvas.item(0, 1e4)
    xs = sorted([X, X + side * 40])
    sc.ground_quad(g, xs[0], xs[1], z0, z1, TERRAIN, "grass", sc.tone())
    if r.random() < 0.4:  # a footpath through the park
        px = X + side * r.uniform(3, 10)
        sc.ground_quad(g, min(px, px + side * 2), max(px, px + side * 2), z0, z1, SIDEWALK, "paving",
                       sc.tone())
    # trees behind the boundary
    n_trees = int(r.integers(2, 9)) if z0 < 120 else int(r.integers(0, 3))  # far parks: fewer, tiny trees
    for _ in range(n_trees if z1 > 3.0 else 0):
        tz = r.uniform(max(z0, 2.0), z1)
        tx = X + side * r.uniform(2, 25)
        it = sc.canvas.item(2, tz)
        tree(sc, it, tx, tz, r.uniform(5, 14), r.uniform(1.8, 4.5))
    # a building behind the park
    if r.random() < 0.6:
        bx = X + side * r.uniform(25, 45)
        bt = sc.canvas.item(1, max(z0, NEAR))
        H = r.uniform(8, 30)
        bt.poly(cam.project(clip_z(quad_x(bx, 0, H, max(z0, NEAR), z1))), BUILDING, "facade", sc.tone(),
                (-float(side), 0, 0), 1.0, max(z0, NEAR), KIND_XPLANE, bx)
    # boundary treatment: hedge, wall, fence or open
    kind = r.choice(["hedge", "wall", "fence", "open"], p=[0.3, 0.3, 0.3, 0.1])
    zc0 = max(z0, NEAR)
    step = 6.0
    for za in np.arange(zc0, z1, step):
        zb = min(za + step, z1)
        it = sc.canvas.item(2, za)
        if kind == "hedge":
            hedge(sc, it, X, za, zb, side)
        elif kind == "wall":
            wall(sc, it, X, za, zb, r.uniform(0.8, 2.6), side)
        elif kind == "fence":
            fence(sc, it, X, za, zb, r.uniform(1.0, 2.0), side)
