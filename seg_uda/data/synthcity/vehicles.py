"""SynthCity vehicles: side profiles extruded in true perspective (cars, vans, buses, trucks, trams), the moving
traffic in each lane (with two-wheelers and crossing pedestrians), the tram with its rails, and the ego hood."""
from __future__ import annotations

import numpy as np

from .camera import NEAR, clip_z, quad_x, quad_y, quad_z
from .canvas import N_BACK, N_UP, Item
from .context import SceneContext
from .ids import BUS, CAR, EGO_VEHICLE, KIND_GROUND, KIND_XPLANE, ROAD, SIDEWALK, TRAIN, TRUCK
from .people import person, two_wheeler


# car-like side profiles (z as a fraction of length, y in metres); rear at z = 0
PROFILES = {
    "sedan": ([(0.0, 0.30), (0.0, 0.92), (0.16, 0.98), (0.30, 1.40), (0.62, 1.43), (0.80, 0.98), (1.0, 0.86),
               (1.0, 0.30)], ["paint", "paint", "glass", "paint", "glass", "paint", "paint", "under"]),
    "hatch": ([(0.0, 0.30), (0.0, 1.0), (0.06, 1.42), (0.66, 1.48), (0.82, 1.0), (1.0, 0.88), (1.0, 0.30)],
              ["paint", "glass", "paint", "glass", "paint", "paint", "under"]),
    "van": ([(0.0, 0.32), (0.0, 1.85), (0.85, 1.90), (0.93, 1.15), (1.0, 1.0), (1.0, 0.32)],
            ["paint", "paint", "glass", "paint", "paint", "under"]),
    "bus": ([(0.0, 0.35), (0.0, 3.0), (0.02, 3.1), (0.98, 3.1), (1.0, 3.0), (1.0, 0.35)],
            ["paint", "paint", "paint", "paint", "paint", "under"]),
    "box": ([(0.0, 0.6), (0.0, 3.6), (1.0, 3.6), (1.0, 0.6)], ["paint", "paint", "paint", "under"]),
    "cab": ([(0.0, 0.5), (0.0, 2.9), (0.85, 2.9), (1.0, 2.0), (1.0, 0.5)],
            ["paint", "paint", "glass", "paint", "under"]),
    "tram": ([(0.0, 0.45), (0.0, 3.2), (0.01, 3.4), (0.99, 3.4), (1.0, 3.2), (1.0, 0.45)],
             ["paint", "glass", "paint", "paint", "paint", "under"]),
}
#: body paint material of each vehicle kind
PAINTS = {"car": "car_paint", "bus": "bus_paint", "truck": "truck_paint", "tram": "train_paint",
          "tuktuk": "tuktuk_paint"}


def prism(sc: SceneContext, it: Item, kind: str, x0: float, x1: float, z0: float, length: float, hscale: float,
          label: int, mat: str, tone: int, oncoming: bool, private: int = 0) -> None:
    """Extrude a side profile along X and draw its camera-facing faces (true perspective)."""
    cam = sc.cam
    prof, faces = PROFILES[kind]
    P = np.array(prof, np.float64)
    zz = P[:, 0] * length
    if oncoming:
        zz = length - zz
    yy = P[:, 1] * hscale
    zz = z0 + zz
    n = len(P)
    xs = x0 if x0 > 0 else (x1 if x1 < 0 else None)  # the visible long side, if any
    detailed = (x1 - x0) * cam.scale(z0) >= 10.0  # level of detail: skip small parts far away
    if not detailed:  # far away: camera-facing end + visible side only
        it.poly(cam.project(clip_z(quad_z(z0, x0, x1, yy.min(), yy.max()))), label, mat, tone, N_BACK, 1.0,
                max(z0, NEAR), private=private)
        if xs is not None:
            it.poly(cam.project(clip_z(np.stack([np.full(n, xs), yy, zz], -1))), label, mat, tone,
                    (-1.0 if xs > 0 else 1.0, 0.0, 0.0), 1.0, max(z0, NEAR), KIND_XPLANE, xs, private=private)
        return
    area = np.sum(zz * np.roll(yy, -1) - np.roll(zz, -1) * yy)
    sign = 1.0 if area > 0 else -1.0
    strips = []
    for k in range(n):
        a, b = k, (k + 1) % n
        dz, dy = zz[b] - zz[a], yy[b] - yy[a]
        nz, ny = dy * sign, -dz * sign  # outward normal in (z, y)
        if nz * (0 - zz[a]) + ny * (cam.h - yy[a]) <= 0 or faces[k] == "under":
            continue
        face = np.array([[x0, yy[a], zz[a]], [x1, yy[a], zz[a]], [x1, yy[b], zz[b]], [x0, yy[b], zz[b]]])
        nrm = np.array([0.0, ny, nz])
        nrm /= np.linalg.norm(nrm) + 1e-9
        fmat = "glass" if faces[k] == "glass" and not private else mat
        if faces[k] == "glass" and private:
            fmat = "interior"
        depth = min(zz[a], zz[b])
        strips.append((-(zz[a] + zz[b]) / 2, face, fmat, tuple(nrm), depth))
    for _, face, fmat, nrm, depth in sorted(strips, key=lambda t: t[0]):
        it.poly(cam.project(clip_z(face)), label, fmat, tone if fmat == mat else sc.tone() % 200, nrm, 1.0,
                max(depth, NEAR), private=private)
    # the visible side (if any)
    if xs is not None:
        side_pts = np.stack([np.full(n, xs), yy, zz], -1)
        nrm = (-1.0 if xs > 0 else 1.0, 0.0, 0.0)
        it.poly(cam.project(clip_z(side_pts)), label, mat, tone, nrm, 1.0, max(zz.min(), NEAR), KIND_XPLANE, xs,
                private=private)
        # side windows
        gl = [k for k, f in enumerate(faces) if f == "glass"]
        if kind in ("sedan", "hatch", "van"):
            ytop = yy.max() - 0.08 * hscale
            ybot = (0.98 if kind != "van" else 1.1) * hscale + 0.04
            zs = np.sort(zz[[g for k in gl for g in (k, (k + 1) % n)]]) if gl else np.array([zz.min(), zz.max()])
            za, zb = zs[0] + 0.15 * length, zs[-1] - 0.1 * length
            if zb > za:
                it.poly(cam.project(clip_z(quad_x(xs, ybot, ytop, za, zb))), label,
                        "interior" if private else "glass", sc.tone() % 200, nrm, 1.0, max(za, NEAR),
                        KIND_XPLANE, xs, private=private)
        elif kind in ("bus", "tram"):
            wins = []
            yb, yt = 1.3 * hscale, 2.5 * hscale
            for za in np.arange(z0 + 0.5, z0 + length - 1.5, 1.6 if kind == "bus" else 2.2):
                wins.append(cam.project(clip_z(quad_x(xs, yb, yt, za, za + (1.3 if kind == "bus" else 1.8)))))
            it.poly(wins, label, "glass", sc.tone() % 200, nrm, 1.0, max(z0, NEAR), KIND_XPLANE, xs)
        # wheels on the side
        wr = 0.33 if kind in ("sedan", "hatch") else 0.45
        wheel_z = [z0 + 0.18 * length, z0 + 0.82 * length] if kind != "tram" else \
            [z0 + 0.1 * length, z0 + 0.2 * length, z0 + 0.8 * length, z0 + 0.9 * length]
        if kind in ("bus", "box"):
            wheel_z = [z0 + 0.2 * length, z0 + 0.75 * length]
        if kind == "cab":
            wheel_z = [z0 + 0.6 * length]
        t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        wheels = [cam.project(clip_z(np.stack([np.full_like(t, xs), wr + wr * np.sin(t), wz + wr * np.cos(t)], -1)))
                  for wz in wheel_z]
        it.poly(wheels, label, "tyre", sc.tone(), nrm, 1.0, max(z0, NEAR), private=private)
    # rear/front details on the camera-facing end
    zface = z0  # the camera-facing end (rear, or front for oncoming traffic)
    if kind in ("sedan", "hatch", "van", "bus", "box", "tram"):
        yl = (0.7 if kind in ("sedan", "hatch") else 0.9) * hscale
        w = x1 - x0
        lights = [quad_z(zface, x0 + 0.05 * w, x0 + 0.2 * w, yl, yl + 0.15),
                  quad_z(zface, x1 - 0.2 * w, x1 - 0.05 * w, yl, yl + 0.15)]
        it.poly([cam.project(clip_z(q)) for q in lights], label, "car_light", 240 if oncoming else 20, N_BACK,
                1.0, max(zface, NEAR), private=private)
        tyres = [quad_z(zface + 0.4, x0 + 0.08, x0 + 0.32, 0, 0.4), quad_z(zface + 0.4, x1 - 0.32, x1 - 0.08, 0, 0.4)]
        it.poly([cam.project(clip_z(q)) for q in tyres], label, "tyre", 10, N_BACK, 1.0, max(zface, NEAR),
                private=private)
        if kind in ("sedan", "hatch", "van"):  # license plate (counts as car in Cityscapes label ids)
            it.poly(cam.project(clip_z(quad_z(zface - 0.01, (x0 + x1) / 2 - 0.26, (x0 + x1) / 2 + 0.26,
                                               0.4 * hscale, 0.52 * hscale))), label, "sign_back", 250, N_BACK,
                    1.0, max(zface, NEAR), private=private)


def vehicle(sc: SceneContext, kind: str, xc: float, z: float, oncoming: bool) -> None:
    """A car (sedan / hatch / van), bus or truck (cab + box) at lane centre ``xc``, rear (or front) at ``z``."""
    r = sc.rng
    if kind == "car":
        prof = str(r.choice(["sedan", "hatch", "van"], p=[0.5, 0.35, 0.15]))
        w, L, hs = r.uniform(1.65, 1.95), r.uniform(3.8, 4.9), r.uniform(0.92, 1.12)
        if prof == "van":
            L = r.uniform(4.6, 5.4)
    elif kind == "bus":
        prof, w, L, hs = "bus", 2.5, r.uniform(11, 13.5), r.uniform(0.95, 1.1)
    elif kind == "truck":
        prof, w, L, hs = "box", r.uniform(2.2, 2.5), r.uniform(5, 8), r.uniform(0.8, 1.05)
    else:
        raise ValueError(kind)
    if z < 1.5 or not sc.visible(z, 0.5):
        return
    it = sc.canvas.item(3, z)
    label = {"car": CAR, "bus": BUS, "truck": TRUCK}[kind]
    tone = sc.tone()
    shadow = sc.canvas.item(0, 50.0)
    sc.ground_quad(shadow, xc - w / 2 - 0.1, xc + w / 2 + 0.1, z - 0.2, z + L, ROAD if abs(xc) < 20 else SIDEWALK,
                   "asphalt", sc.tone_road, shade=0.45)
    if kind == "truck":
        cab_L = 2.2
        parts = [("cab", z + L, cab_L), ("box", z, L)] if not oncoming else [("box", z + cab_L, L), ("cab", z, cab_L)]
        # draw the farther part first
        for pk, pz, pl in sorted(parts, key=lambda t: -t[1]):
            sub = sc.canvas.item(3, pz)
            prism(sc, sub, pk, xc - w / 2, xc + w / 2, pz, pl, hs, label, "truck_paint", tone, oncoming)
        return
    prism(sc, it, prof, xc - w / 2, xc + w / 2, z, L, hs, label, PAINTS[kind], tone, oncoming)


def traffic(sc: SceneContext) -> None:
    """Moving vehicles and two-wheelers in every lane, cyclists near the curb, pedestrians at crossings."""
    r, lay = sc.rng, sc.lay
    lanes = [(sc.x_center + (k + 0.5) * sc.lane_w, False) for k in range(sc.n_right)]
    lanes += [(sc.x_center - (k + 0.5) * sc.lane_w, True) for k in range(sc.n_left)]
    for xc, oncoming in lanes:
        z = r.uniform(4.5, 20) if abs(xc) > 2.0 else r.uniform(7, 25)
        gap = lay.car_gap * r.uniform(0.5, 1.8)
        while z < 120:
            xj = xc + r.uniform(-0.3, 0.3)
            u = r.random()
            if u < 0.06:
                vehicle(sc, "truck", xj, z, oncoming)
                z += 9
            elif u < 0.11:
                vehicle(sc, "bus", xj, z, oncoming)
                z += 13
            elif u < 0.15:
                two_wheeler(sc, xj, z, np.pi / 2 + r.uniform(-0.25, 0.25) + (np.pi if oncoming else 0),
                            motor=True, with_rider=True)
                z += 2
            elif u < 0.19:
                two_wheeler(sc, xj + r.uniform(0.5, 1.2) * (1 if not oncoming else -1), z,
                            np.pi / 2 + r.uniform(-0.2, 0.2) + (np.pi if oncoming else 0), motor=False,
                            with_rider=True)
                z += 2
            else:
                vehicle(sc, "car", xj, z, oncoming)
                z += 5
            z += r.exponential(gap)
    # cyclists crossing or riding near the curb
    for _ in range(int(r.poisson(0.35))):
        side = 1 if r.random() < 0.7 else -1
        x = sc.sides[side]["edge"] - side * r.uniform(0.5, 1.2)
        two_wheeler(sc, x, r.uniform(5, 40), np.pi / 2 + r.uniform(-0.5, 0.5), motor=r.random() < 0.3,
                    with_rider=True)
    # pedestrians crossing the road
    for a, b in sc.crossings[:2]:
        for _ in range(int(r.poisson(1.2))):
            person(sc, sc.canvas.item(3, a - 2.5), r.uniform(sc.road_l, sc.road_r), a - r.uniform(1.5, 3.5))


def tram(sc: SceneContext) -> None:
    """A tram on rails near the centre line, with its pantograph."""
    r = sc.rng
    xc = sc.x_center + (r.uniform(-0.5, 0.5) * sc.lane_w if sc.n_left else 0.5 * sc.lane_w)
    z = r.uniform(8, 45)
    L = r.uniform(20, 32)
    it = sc.canvas.item(3, z)
    oncoming = r.random() < 0.4
    g = sc.canvas.item(0, 40.0)
    rails = [sc.cam.project(clip_z(quad_y(0.0, xc + dx - 0.04, xc + dx + 0.04, NEAR, 200))) for dx in (-0.72, 0.72)]
    g.poly(rails, ROAD, "rail", sc.tone(), N_UP, 1.0, 5.0, KIND_GROUND)
    prism(sc, it, "tram", xc - 1.3, xc + 1.3, z, L, 1.0, TRAIN, "train_paint", sc.tone(), oncoming)
    # pantograph
    top = sc.cam.project(np.array([[xc - 0.6, 3.4, z + 4], [xc, 4.3, z + 4], [xc + 0.6, 3.4, z + 4]]))
    it.line(top, 1.5, TRAIN, "metal", 0, N_BACK, 1.0, z + 4)


def ego_hood(sc: SceneContext) -> None:
    """The ego-vehicle hood across the bottom of the frame (void, label id 1, as in Cityscapes)."""
    cam, r = sc.cam, sc.rng
    W, H = cam.width, cam.height
    top = H * r.uniform(0.84, 0.92)
    xs = np.linspace(0, W, 24)
    bulge = (1 - ((xs - W / 2) / (W / 2)) ** 2)
    ys = top + (1 - bulge) * H * 0.06
    pts = np.concatenate([np.stack([xs, ys], -1), np.array([[W, H + 2], [0, H + 2]])])
    it = sc.canvas.item(9, 0.0)
    it.poly(pts, EGO_VEHICLE, "ego_hood", sc.tone(), (0.0, 1.0, -0.3), 1.0, 1.0)
