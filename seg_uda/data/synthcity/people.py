"""SynthCity people and two-wheelers as orthographic part models (u forward, w left, v up, metres): the part
renderer (depth-sorted, convex hulls when far), persons, riders, bicycles and motorcycles."""
from __future__ import annotations

from typing import Dict, List, Tuple

import cv2
import numpy as np

from .canvas import N_BACK, Item
from .context import SceneContext
from .ids import BICYCLE, MOTORCYCLE, PERSON, RIDER


def draw_parts(sc: SceneContext, it: Item, base: np.ndarray, z: float, heading: float,
                parts: List[Tuple[str, np.ndarray, int, str, int, int]]) -> None:
    """Draw parts given in local coordinates (u forward, w left, v up); heading 0 = moving right."""
    cam = sc.cam
    s = cam.scale(z)
    ch, sh = np.cos(heading), np.sin(heading)
    if s < 12.0:  # far away (level of detail): one convex hull per (label, private) group
        groups: Dict[Tuple[int, int], list] = {}
        for op, pts, label, mat, tone, private in parts:
            pts = np.atleast_2d(pts)
            if op == "disc":
                c, rr = pts[0], pts[0, 3]
                pts = np.array([[c[0] - rr, c[1], c[2]], [c[0] + rr, c[1], c[2]], [c[0], c[1], c[2] + rr],
                                [c[0], c[1], c[2] - rr]])
            groups.setdefault((label, private), [mat, tone, []])[2].append(pts[:, :3])
        for (label, private), (mat, tone, pl) in groups.items():
            pts = np.concatenate(pl)
            p2 = np.stack([base[0] + (pts[:, 0] * ch + pts[:, 1] * sh) * s, base[1] - pts[:, 2] * s], -1)
            hull = cv2.convexHull(p2.astype(np.float32)).reshape(-1, 2)
            it.poly(hull, label, mat, tone, N_BACK, 1.0, z, private=private)
        return
    order = []
    for k, (op, pts, label, mat, tone, private) in enumerate(parts):
        pts = np.atleast_2d(pts)
        depth = (pts[:, 0] * sh - pts[:, 1] * ch).mean()  # +: farther from the camera
        order.append((-depth, k))
    for _, k in sorted(order):
        op, pts, label, mat, tone, private = parts[k]
        pts = np.atleast_2d(pts)
        sx = base[0] + (pts[:, 0] * ch + pts[:, 1] * sh) * s
        sy = base[1] - pts[:, 2] * s
        p2 = np.stack([sx, sy], -1)
        if op == "hull":
            hull = cv2.convexHull(p2.astype(np.float32)).reshape(-1, 2)
            it.poly(hull, label, mat, tone, N_BACK, 1.0, z, private=private)
        elif op == "disc":  # pts: centre; radius in the 4th column -> circle in the image plane
            it.disc(p2[0], float(pts[0, 3]) * s, label, mat, tone, N_BACK, 1.0, z, private=private)
        elif op == "ring":
            it.line(p2, max(1.0, 0.06 * s), label, mat, tone, N_BACK, 1.0, z, closed=True, private=private)
        elif op == "line":
            it.line(p2, max(1.0, 0.04 * s), label, mat, tone, N_BACK, 1.0, z, private=private)
        elif op == "fill":
            it.poly(p2, label, mat, tone, N_BACK, 1.0, z, private=private)


def box(u0: float, u1: float, w0: float, w1: float, v0: float, v1: float) -> np.ndarray:
    """The 8 corners of the local box [u0, u1] x [w0, w1] x [v0, v1]."""
    return np.array([[u, w, v] for u in (u0, u1) for w in (w0, w1) for v in (v0, v1)], np.float64)


def circle_uv(u: float, w: float, v: float, rad: float, n: int = 14) -> np.ndarray:
    """An n-gon of radius ``rad`` around (u, v) in the vertical plane w = const (wheels)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([u + rad * np.cos(t), np.full(n, w), v + rad * np.sin(t)], -1)


def body_parts(sc: SceneContext, label: int, seated: bool, height: float) -> List[tuple]:
    """Parts of a person ``height`` m tall, walking or ``seated`` (riders), scaled from a 1.75 m body."""
    r = sc.rng
    k = height / 1.75
    top, bottom, skin, hair = sc.tone(), sc.tone(), sc.tone(), sc.tone()
    B = box
    parts: List[tuple] = []
    stride = r.uniform(-0.25, 0.25) * k
    if seated:
        parts += [("hull", np.concatenate([B(-0.1, 0.35, -0.22, -0.1, 0.75, 0.9), B(0.3, 0.4, -0.22, -0.1, 0.3, 0.8)]),
                   label, "cloth_bottom", bottom, 0),
                  ("hull", np.concatenate([B(-0.1, 0.35, 0.1, 0.22, 0.75, 0.9), B(0.3, 0.4, 0.1, 0.22, 0.3, 0.8)]),
                   label, "cloth_bottom", bottom, 0)]
        torso = B(-0.15, 0.1, -0.2, 0.2, 0.85, 1.45)
        torso[torso[:, 2] > 1.0, 0] += 0.15  # lean forward at the shoulders
        parts.append(("hull", torso, label, "cloth_top", top, 0))
        parts.append(("hull", np.concatenate([B(0.05, 0.55, -0.26, -0.18, 1.1, 1.38)]), label, "cloth_top", top, 0))
        parts.append(("hull", np.concatenate([B(0.05, 0.55, 0.18, 0.26, 1.1, 1.38)]), label, "cloth_top", top, 0))
        parts.append(("disc", np.array([[0.25, 0.0, 1.62, 0.13]]), label, "hair" if r.random() < 0.5 else "skin",
                      hair, 0))
    else:
        parts += [("hull", B(-0.08 + stride, 0.08 + stride, -0.17, -0.03, 0.0, 0.88), label, "cloth_bottom", bottom, 0),
                  ("hull", B(-0.08 - stride, 0.08 - stride, 0.03, 0.17, 0.0, 0.88), label, "cloth_bottom", bottom, 0),
                  ("hull", B(-0.13, 0.13, -0.21, 0.21, 0.85, 1.48), label, "cloth_top", top, 0),
                  ("hull", B(-0.06 - stride / 2, 0.06 - stride / 2, -0.28, -0.2, 0.85, 1.45), label, "cloth_top",
                   top, 0),
                  ("hull", B(-0.06 + stride / 2, 0.06 + stride / 2, 0.2, 0.28, 0.85, 1.45), label, "cloth_top", top, 0),
                  ("disc", np.array([[0.0, 0.0, 1.6, 0.12]]), label, "skin", skin, 0),
                  ("disc", np.array([[-0.02, 0.0, 1.64, 0.11]]), label, "hair", hair, 0)]
        if r.random() < 0.25:  # a bag
            parts.append(("hull", B(-0.2, -0.05, 0.2, 0.35, 0.8, 1.1), label, "cloth_bottom", sc.tone(), 0))
    out = []
    for op, pts, lab, mat, tone, priv in parts:
        pts = np.array(pts, np.float64)
        pts[:, :3] *= k
        out.append((op, pts, lab, mat, tone, priv))
    return out


def person(sc: SceneContext, it: Item, x: float, z: float, rider: bool = False) -> None:
    """A pedestrian at (x, z) with a random heading (``rider`` is unused: riders come with two-wheelers)."""
    r, cam = sc.rng, sc.cam
    height = r.uniform(1.5, 1.95) if r.random() > 0.1 else r.uniform(1.0, 1.4)
    if not sc.visible(z, height / 4):
        return
    base = cam.project(np.array([x, 0.0, z]))
    draw_parts(sc, it, base, z, r.uniform(0, 2 * np.pi), body_parts(sc, PERSON, False, height))


def two_wheeler(sc: SceneContext, x: float, z: float, heading: float, motor: bool, with_rider: bool) -> None:
    """A bicycle or motorcycle at (x, z) moving along ``heading``, optionally with its rider (and helmet)."""
    r, cam = sc.rng, sc.cam
    if not sc.visible(z, 0.3):
        return
    it = sc.canvas.item(3, z)
    label = MOTORCYCLE if motor else BICYCLE
    frame = sc.tone()
    parts: List[tuple] = []
    wr = 0.31 if motor else 0.34
    for u in (-0.55, 0.55):
        if motor:
            parts.append(("fill", circle_uv(u, 0.0, wr, wr), label, "tyre", sc.tone(), 0))
            parts.append(("fill", circle_uv(u, 0.0, wr, wr * 0.55), label, "rim", sc.tone(), 0))
        else:
            parts.append(("ring", circle_uv(u, 0.0, wr, wr), label, "tyre", sc.tone(), 0))
    if motor:
        parts.append(("hull", box(-0.5, 0.45, -0.18, 0.18, 0.35, 0.85), label, "bike_frame", frame, 0))
        parts.append(("hull", box(-0.1, 0.35, -0.2, 0.2, 0.75, 1.0), label, "bike_frame", frame, 0))
        parts.append(("line", np.array([[0.45, -0.38, 1.05], [0.45, 0.38, 1.05]]), label, "metal", 0, 0))
        parts.append(("line", np.array([[0.55, 0, wr], [0.45, 0, 1.05]]), label, "metal", 0, 0))
    else:
        tri = np.array([[-0.55, 0, wr], [-0.1, 0, 0.85], [0.45, 0, 0.85], [0.0, 0, wr], [-0.55, 0, wr]])
        parts.append(("line", tri, label, "bike_frame", frame, 0))
        parts.append(("line", np.array([[0.55, 0, wr], [0.45, 0, 1.0]]), label, "bike_frame", frame, 0))
        parts.append(("line", np.array([[0.42, -0.3, 1.0], [0.42, 0.3, 1.0]]), label, "metal", 0, 0))
        parts.append(("hull", box(-0.2, 0.0, -0.06, 0.06, 0.88, 0.95), label, "bike_frame", 0, 0))
    if with_rider:
        height = r.uniform(1.6, 1.9)
        body = body_parts(sc, RIDER, True, height)
        lift = (0.35 if motor else 0.25)
        for op, pts, lab, mat, tone, priv in body:
            pts = pts.copy()
            pts[:, 2] += lift
            pts[:, 0] -= 0.1
            parts.append((op, pts, lab, mat, tone, priv))
        if motor and r.random() < 0.8:  # helmet
            parts.append(("disc", np.array([[0.15, 0.0, 1.62 * height / 1.75 + lift, 0.16]]), RIDER, "bike_frame",
                          sc.tone(), 0))
    base = cam.project(np.array([x, 0.0, z]))
    draw_parts(sc, it, base, z, heading, parts)
