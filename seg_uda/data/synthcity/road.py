"""SynthCity road and ground plane: samples the street cross-section (lanes, grass strips, sidewalks) and paints
terrain, carriageway, patches, sidewalks, curbs, lane markings and the side-street crossings (with zebras)."""
from __future__ import annotations

import numpy as np

from .camera import NEAR, clip_z, quad_y
from .canvas import N_UP
from .context import SceneContext
from .furniture import traffic_light
from .ids import KIND_GROUND, ROAD, SIDEWALK, TERRAIN


def sample_street(sc: SceneContext) -> None:
    """Sample lanes, the camera lane, the street's visible length and each side's strip / sidewalk widths."""
    r = sc.rng
    lane_w = r.uniform(3.0, 3.7)
    n_right = int(r.choice([1, 1, 2, 2, 3]))
    n_left = int(r.choice([0, 1, 1, 2, 2]))
    lane_idx = int(r.integers(0, n_right))  # camera lane, counted from the centre line
    x_center = -(lane_idx + 0.5) * lane_w + r.uniform(-0.4, 0.4)
    sc.lane_w, sc.n_right, sc.n_left = lane_w, n_right, n_left
    sc.road_l, sc.road_r = x_center - n_left * lane_w, x_center + n_right * lane_w
    sc.x_center = x_center
    sc.z_end = float(r.choice([r.uniform(45, 120), r.uniform(120, 260), 2000.0], p=[0.35, 0.35, 0.3]))
    sc.tone_road = sc.tone()
    sides = {}
    for side in (-1, 1):
        strip = r.uniform(0.8, 2.2) if r.random() < 0.25 else 0.0
        sw = r.uniform(2.0, 5.5)
        edge = sc.road_r if side > 0 else sc.road_l
        sides[side] = dict(edge=edge, strip=strip, sw=sw, xb=abs(edge) + strip + sw)
    sc.sides = sides


def paint_ground(sc: SceneContext) -> None:
    """Terrain underlay, road with repaired patches, grass strips, sidewalks, curbs and lane / edge markings."""
    r, zf = sc.rng, 3000.0
    it = sc.canvas.item(0, 1e5)
    # a broad terrain underlay (visible only far away, beyond the city blocks)
    sc.ground_quad(it, -400, 400, NEAR, zf, TERRAIN, "grass", sc.tone())
    sc.ground_quad(it, sc.road_l, sc.road_r, NEAR, zf, ROAD, "asphalt", sc.tone_road)
    # repaired asphalt patches and manholes (same label, different appearance)
    for _ in range(int(r.integers(0, 4))):
        z0 = r.uniform(4, 40)
        x0 = r.uniform(sc.road_l, sc.road_r - 1)
        sc.ground_quad(it, x0, x0 + r.uniform(0.8, 3), z0, z0 + r.uniform(1, 6), ROAD, "asphalt",
                       sc.tone(), shade=r.uniform(0.85, 1.1))
    for side in (-1, 1):
        s = sc.sides[side]
        e, st, sw = s["edge"], s["strip"], s["sw"]
        xs = [e, e + side * st, e + side * (st + sw), side * (s["xb"] + 60)]
        tone_sw = sc.tone()
        lo = lambda a, b: (min(a, b), max(a, b))  # noqa: E731
        if st > 0:
            sc.ground_quad(it, *lo(xs[0], xs[1]), NEAR, zf, TERRAIN, "grass", sc.tone())
        sc.ground_quad(it, *lo(xs[1], xs[2]), NEAR, zf, SIDEWALK, "paving", tone_sw)
        # curb: a thin raised strip along the road edge
        cw = 0.18
        sc.ground_quad(it, *lo(xs[1], xs[1] + side * cw), NEAR, zf, SIDEWALK, "curb", sc.tone(), y=0.0)
        sc.ground_quad(it, *lo(xs[2], xs[3]), NEAR, zf, SIDEWALK, "paving", tone_sw, shade=0.95)
    # lane markings: dashed centre/lane lines
    tone_paint = sc.tone()
    dash = r.uniform(2.0, 4.0)
    period = dash + r.uniform(3.0, 9.0)
    marks = []
    lines_x = [sc.x_center + k * sc.lane_w for k in range(-sc.n_left + 1, sc.n_right)]
    for k, lx in enumerate(lines_x):
        solid = abs(lx - sc.x_center) < 0.1 and sc.n_left > 0 and r.random() < 0.5
        zs = [(1.0, 160.0)] if solid else [(z, z + dash) for z in np.arange(r.uniform(0, period), 160, period)]
        for z0, z1 in zs:
            marks.append(sc.cam.project(clip_z(quad_y(0.0, lx - 0.07, lx + 0.07, z0, z1))))
    for side in (-1, 1):  # edge lines
        if r.random() < 0.5:
            ex = sc.sides[side]["edge"] - side * 0.3
            marks.append(sc.cam.project(clip_z(quad_y(0.0, ex - 0.07, ex + 0.07, NEAR, 160))))
    if marks:
        it.poly(marks, ROAD, "lane_paint", tone_paint, N_UP, 1.0, 5.0, KIND_GROUND)
    sc.tone_paint = tone_paint


def crossing(sc: SceneContext, side: int, z0: float, z1: float) -> None:
    """A side street crossing the sidewalk at [z0, z1], a zebra before it and often a traffic light."""
    r, cam = sc.rng, sc.cam
    s = sc.sides[side]
    g = sc.canvas.item(0, 1e4)
    x0 = s["edge"]
    x1 = side * (s["xb"] + 80)
    sc.ground_quad(g, min(x0, x1), max(x0, x1), z0, z1, ROAD, "asphalt", sc.tone_road)
    sc.crossings.append((z0, z1))
    # zebra stripes across the main road just before the crossing
    if r.random() < 0.6 and z0 > 4:
        stripes = []
        for x in np.arange(sc.road_l + 0.3, sc.road_r - 0.3, 1.0):
            stripes.append(cam.project(clip_z(quad_y(0.0, x, x + 0.5, z0 - 4, z0 - 1))))
        g.poly(stripes, ROAD, "lane_paint", sc.tone_paint, N_UP, 1.0, z0, KIND_GROUND)
    # traffic lights at the near corner
    if r.random() < 0.75 and z0 > 3:
        traffic_light(sc, s["edge"] + side * 0.6, z0 - 0.5, overhead=r.random() < 0.4, side=side)
