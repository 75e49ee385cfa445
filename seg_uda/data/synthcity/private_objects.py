"""SynthCity private (open-set) classes that occur only in the target domain: animals (dog- or cow-like) on the
road or sidewalk and tuk-tuks in the lanes, drawn as part models with private ids 1 and 2 (label id 0)."""
from __future__ import annotations

import numpy as np

from .context import SceneContext
from .ids import PRIVATE_ANIMAL, PRIVATE_TUKTUK
from .people import box, circle_uv, draw_parts


def private_objects(sc: SceneContext) -> None:
    """One or two private objects, each an animal or a tuk-tuk with equal probability."""
    r = sc.rng
    for _ in range(int(r.integers(1, 3))):
        if r.random() < 0.5:
            animal(sc)
        else:
            tuktuk(sc)


def animal(sc: SceneContext) -> None:
    """A cow-like or dog-like animal on the road or the sidewalk."""
    r, cam = sc.rng, sc.cam
    big = r.random() < 0.45  # cow-like vs dog-like
    L, H = (r.uniform(1.8, 2.3), r.uniform(1.2, 1.5)) if big else (r.uniform(0.6, 1.0), r.uniform(0.45, 0.75))
    side = 1 if r.random() < 0.5 else -1
    on_road = r.random() < 0.5
    x = (r.uniform(sc.road_l + 1, sc.road_r - 1) if on_road else
         side * (abs(sc.sides[side]["edge"]) + sc.sides[side]["strip"] + r.uniform(0.5, sc.sides[side]["sw"])))
    z = r.uniform(4, 22)
    if not sc.visible(z, 0.2):
        return
    it = sc.canvas.item(3, z)
    B = box
    fur, fur2 = sc.tone(), sc.tone()
    leg_h = H * 0.55
    bw = L * (0.18 if big else 0.14)
    parts = [("hull", B(-L / 2, L / 2, -bw, bw, leg_h, H), 0, "fur", fur, PRIVATE_ANIMAL)]
    for u in (-L / 2 + 0.1, L / 2 - 0.15):
        for w in (-bw * 0.7, bw * 0.7):
            du = r.uniform(-0.08, 0.08) * L
            parts.append(("hull", B(u + du - 0.05 * L / 1.0, u + du + 0.05 * L, w - 0.04, w + 0.04, 0, leg_h + 0.05), 0,
                          "fur", fur, PRIVATE_ANIMAL))
    hx = L / 2 + 0.1 * L
    parts.append(("hull", np.concatenate([B(L / 2 - 0.1, hx, -bw * 0.5, bw * 0.5, H * 0.75, H * 1.05),
                                          B(hx, hx + 0.2 * L, -bw * 0.4, bw * 0.4, H * 0.8, H * 1.0)]), 0, "fur",
                  fur2, PRIVATE_ANIMAL))
    parts.append(("line", np.array([[-L / 2, 0, H * 0.95], [-L / 2 - 0.2 * L, 0, H * (0.5 if big else 1.2)]]), 0,
                  "fur", fur, PRIVATE_ANIMAL))
    if big:  # horns
        parts.append(("line", np.array([[hx + 0.05, -0.15, H * 1.15], [hx + 0.05, 0.15, H * 1.15]]), 0, "fur", 250,
                      PRIVATE_ANIMAL))
    base = cam.project(np.array([x, 0.0, z]))
    draw_parts(sc, it, base, z, r.uniform(0, 2 * np.pi), parts)


def tuktuk(sc: SceneContext) -> None:
    """A tuk-tuk (auto rickshaw) in one of the right-hand lanes."""
    r, cam = sc.rng, sc.cam
    lanes = [sc.x_center + (k + 0.5) * sc.lane_w for k in range(sc.n_right)]
    x = float(r.choice(lanes)) + r.uniform(-0.6, 0.6)
    z = r.uniform(5, 35)
    if not sc.visible(z, 0.3):
        return
    it = sc.canvas.item(3, z)
    B = box
    paint, canopy = sc.tone(), sc.tone()
    P = PRIVATE_TUKTUK
    parts = [
        ("hull", B(-1.2, 1.0, -0.65, 0.65, 0.3, 1.0), 0, "tuktuk_paint", paint, P),
        ("hull", B(-1.25, 0.95, -0.7, 0.7, 1.6, 1.8), 0, "tuktuk_paint", canopy, P),
        ("hull", B(-1.2, -1.1, -0.65, 0.65, 1.0, 1.6), 0, "interior", 20, P),
        ("hull", B(0.85, 0.95, -0.55, 0.55, 1.0, 1.6), 0, "glass", 60, P),
        ("hull", B(0.9, 1.5, -0.3, 0.3, 0.3, 0.95), 0, "tuktuk_paint", paint, P),
    ]
    for u, w in ((-0.9, -0.62), (-0.9, 0.62)):
        parts.append(("fill", circle_uv(u, w, 0.22, 0.22), 0, "tyre", 10, P))
    parts.append(("fill", circle_uv(1.3, 0.0, 0.22, 0.22), 0, "tyre", 10, P))
    for u in (-1.18, 0.9):
        for w in (-0.66, 0.66):
            parts.append(("line", np.array([[u, w, 1.0], [u, w, 1.6]]), 0, "metal", 0, P))
    base = cam.project(np.array([x, 0.0, z]))
    draw_parts(sc, it, base, z, np.pi / 2 + r.uniform(-0.5, 0.5), parts)
