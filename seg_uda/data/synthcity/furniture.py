"""SynthCity street furniture: poles, traffic lights, traffic signs, sign posts and street lamps, and the
per-side sidewalk population (furniture, street trees, low walls / fences, pedestrians, parked bikes and cars)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .barriers import fence, wall
from .canvas import N_BACK, Item
from .context import SceneContext
from .ids import POLE, TERRAIN, TRAFFIC_LIGHT, TRAFFIC_SIGN
from .people import person, two_wheeler
from .vegetation import tree
from .vehicles import vehicle


def pole(sc: SceneContext, it: Item, x: float, z: float, h: float, width: float = 0.12,
         tone: Optional[int] = None) -> None:
    """A vertical pole of ``width`` x ``h`` metres at (x, z), kept at least one pixel wide."""
    cam = sc.cam
    p = cam.project(np.array([[x - width / 2, 0, z], [x - width / 2, h, z], [x + width / 2, h, z],
                              [x + width / 2, 0, z]]))
    if p[3, 0] - p[0, 0] < 1.0:  # keep poles at least one pixel wide
        c = (p[0, 0] + p[3, 0]) / 2
        p[[0, 1], 0], p[[2, 3], 0] = c - 0.5, c + 0.5
    it.poly(p, POLE, "metal", sc.tone() if tone is None else tone, N_BACK, 1.0, z)


def traffic_light(sc: SceneContext, x: float, z: float, overhead: bool, side: int) -> None:
    """A traffic light at (x, z), on a post or with an overhead arm; lamps hidden when seen from behind."""
    r, cam = sc.rng, sc.cam
    if not sc.visible(z, 0.2):
        return
    it = sc.canvas.item(3, z)
    h = r.uniform(2.6, 3.4)
    pole(sc, it, x, z, h + (2.5 if overhead else 0.6))
    s = cam.scale(z)
    backside = r.random() < 0.2
    boxes = [(x, h)]
    if overhead:
        arm_len = r.uniform(3, 6)
        ax = x - side * arm_len
        top = h + 2.4
        it.poly(cam.project(np.array([[x, top, z], [x, top + 0.12, z], [ax, top + 0.12, z], [ax, top, z]])),
                POLE, "metal", sc.tone(), N_BACK, 1.0, z)
        boxes = [(ax + side * 0.3, top - 1.1), (x - side * 0.2, h)]
    lit = int(r.integers(0, 3))
    for bx, by in boxes:
        w, hh = 0.35, 1.0
        c = cam.project(np.array([bx, by + hh / 2, z]))
        rect = np.array([[c[0] - w * s / 2, c[1] - hh * s / 2], [c[0] + w * s / 2, c[1] - hh * s / 2],
                         [c[0] + w * s / 2, c[1] + hh * s / 2], [c[0] - w * s / 2, c[1] + hh * s / 2]])
        it.poly(rect, TRAFFIC_LIGHT, "tl_housing", sc.tone(), N_BACK, 1.0, z)
        if not backside:
            for k, mat in enumerate(("lamp_red", "lamp_amber", "lamp_green")):
                tone = 230 if k == lit else 30
                it.disc(np.array([c[0], c[1] + (k - 1) * 0.3 * s]), 0.11 * s, TRAFFIC_LIGHT, mat, tone, N_BACK,
                        1.0, z)


def sign(sc: SceneContext, it: Item, x: float, z: float, y: float, kind: Optional[str] = None) -> None:
    """A traffic sign of a random (or given) shape centred at height ``y`` on the post at (x, z)."""
    r, cam = sc.rng, sc.cam
    s = cam.scale(z)
    c = cam.project(np.array([x, y, z]))
    size = r.uniform(0.55, 0.85) * s
    kind = kind or str(r.choice(["circle", "triangle", "rect", "diamond", "octagon"], p=[0.35, 0.2, 0.25, 0.1, 0.1]))
    if kind == "circle":
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    elif kind == "triangle":
        t = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6]) + (np.pi if r.random() < 0.3 else 0)
    elif kind == "diamond":
        t = np.array([0, np.pi / 2, np.pi, 3 * np.pi / 2])
    elif kind == "octagon":
        t = np.linspace(0, 2 * np.pi, 8, endpoint=False) + np.pi / 8
    else:
        t = None
    if t is None:
        wr, hr = r.uniform(0.8, 1.6), r.uniform(0.5, 0.9)
        outer = np.array([[-wr, -hr], [wr, -hr], [wr, hr], [-wr, hr]]) * size / 2
    else:
        outer = np.stack([np.cos(t), np.sin(t)], -1) * size / 2
    back = r.random() < 0.2
    tone = sc.tone()
    if back:
        it.poly(outer + c, TRAFFIC_SIGN, "sign_back", tone, N_BACK, 1.0, z)
    else:
        it.poly(outer + c, TRAFFIC_SIGN, "sign_border", tone, N_BACK, 1.0, z)
        it.poly(outer * 0.72 + c, TRAFFIC_SIGN, "sign_face", tone, N_BACK, 1.0, z)


def sign_post(sc: SceneContext, x: float, z: float) -> None:
    """A sign post with one or two signs."""
    if not sc.visible(z, 0.1):
        return
    it = sc.canvas.item(3, z)
    h = sc.rng.uniform(2.2, 3.0)
    pole(sc, it, x, z, h + 0.3, 0.08)
    sign(sc, it, x, z, h)
    if sc.rng.random() < 0.35:
        sign(sc, it, x, z, h - 0.8)


def lamp(sc: SceneContext, x: float, z: float, side: int) -> None:
    """A street lamp with an arm over the road (and sometimes a sign on its post)."""
    r, cam = sc.rng, sc.cam
    if not sc.visible(z, 0.1):
        return
    it = sc.canvas.item(3, z)
    h = r.uniform(5.5, 9.0)
    tone = sc.tone()
    pole(sc, it, x, z, h, 0.16, tone)
    arm = r.uniform(0.8, 2.5)
    ax = x - side * arm
    pts = cam.project(np.array([[x, h - 0.1, z], [x, h + 0.05, z], [ax, h + 0.05, z], [ax, h - 0.1, z]]))
    it.poly(pts, POLE, "metal", tone, N_BACK, 1.0, z)
    head = cam.project(np.array([[ax - 0.35, h - 0.1, z], [ax + 0.35, h - 0.1, z], [ax + 0.25, h - 0.3, z],
                                 [ax - 0.25, h - 0.3, z]]))
    it.poly(head, POLE, "lamp_head", 220, N_BACK, 1.0, z)
    if r.random() < 0.25:  # a sign mounted on the lamp post
        sign(sc, it, x, z, r.uniform(2.2, 2.8))


def furniture(sc: SceneContext, side: int) -> None:
    """Populate one sidewalk: lamps, sign posts, bollards, a traffic light, street trees, low walls /
    fences, pedestrians, parked bicycles and parked cars along the curb."""
    r, lay = sc.rng, sc.lay
    s = sc.sides[side]
    curb_x = s["edge"] + side * (s["strip"] + 0.5)
    zmax = min(sc.z_end, 140.0)
    # lamps
    spacing = r.uniform(18, 35)
    for z in np.arange(r.uniform(3, spacing), zmax, spacing):
        lamp(sc, curb_x, z, side)
    # sign posts
    for _ in range(int(r.poisson(1.6))):
        sign_post(sc, curb_x + side * r.uniform(0, 0.4), r.uniform(4, 60))
    # bollards / extra poles
    if r.random() < 0.3:
        z0 = r.uniform(3, 20)
        for z in np.arange(z0, z0 + r.uniform(5, 20), 1.6):
            it = sc.canvas.item(3, z)
            pole(sc, it, curb_x, z, 0.9, 0.15)
    # a standalone traffic light
    if r.random() < 0.25:
        traffic_light(sc, curb_x, r.uniform(8, 45), overhead=r.random() < 0.5, side=side)
    # street trees (in pits or on the grass strip)
    if r.random() < lay.tree_p:
        spacing = r.uniform(7, 15)
        tx = s["edge"] + side * (s["strip"] / 2 if s["strip"] > 0 else 1.0)
        tone_pit = sc.tone()
        for z in np.arange(r.uniform(2, spacing), zmax, spacing):
            if any(a - 2 < z < b + 2 for a, b in sc.crossings):
                continue
            it = sc.canvas.item(3, z)
            if s["strip"] == 0 and r.random() < 0.6:
                pit = sc.canvas.item(0, 1e3)
                sc.ground_quad(pit, tx - 0.6, tx + 0.6, z - 0.6, z + 0.6, TERRAIN, "soil", tone_pit)
            tree(sc, it, tx, z, r.uniform(4.5, 11), r.uniform(1.5, 3.5))
    # low walls / fences along the curb
    if r.random() < 0.2:
        z0 = r.uniform(2, 30)
        z1 = z0 + r.uniform(8, 30)
        fx = s["edge"] + side * (s["strip"] + 0.25)
        use_wall = r.random() < 0.4
        for za in np.arange(z0, z1, 5.0):
            it = sc.canvas.item(3, za)
            if use_wall:
                wall(sc, it, fx, za, min(za + 5, z1), r.uniform(0.5, 1.0), side)
            else:
                fence(sc, it, fx, za, min(za + 5, z1), r.uniform(0.8, 1.2), side)
    # pedestrians
    zp = min(zmax, 80.0)
    n = int(r.poisson(lay.person_rate * zp / 10 * r.uniform(0.2, 1.5)))
    for _ in range(n):
        z = float(r.uniform(2.5, zp))
        x = side * (abs(s["edge"]) + s["strip"] + r.uniform(0.4, s["sw"] - 0.3))
        person(sc, sc.canvas.item(3, z), x, z, rider=False)
    # parked bicycles
    for _ in range(int(r.poisson(0.5))):
        z = r.uniform(3, 40)
        x = side * (abs(s["edge"]) + s["strip"] + r.uniform(0.3, 1.2))
        two_wheeler(sc, x, z, heading=r.uniform(-0.4, 0.4) + (0 if side > 0 else np.pi), motor=False,
                    with_rider=False)
    # parked cars along the curb
    cx = s["edge"] - side * 1.1
    if r.random() < lay.parked_p and abs(cx) > 2.8:  # never parked right in front of the camera
        z = r.uniform(1.0, 8)
        while z < min(zmax, 90):
            if not any(a - 3 < z < b + 1 for a, b in sc.crossings):
                vehicle(sc, "car", cx, z, oncoming=False)
            z += r.uniform(4.8, 9.0)
