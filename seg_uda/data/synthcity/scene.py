"""SynthCity scene geometry: a perspective street camera, a painter's-algorithm canvas and the scene sampler.

The sampler places 3-D street furniture (roads, facades, cars, people, poles, ...) in metric world
coordinates and projects it through a pinhole camera. Every drawn primitive is a *record* (label id,
private id, material, tone, normal, shading, depth model); the canvas rasterises record indices into one
int32 buffer far-to-near, so labels are exact and the domain style (``style.py``) colours pixels afterwards.
World axes: X right, Y up, Z forward (metres); the camera sits at (0, h, 0) looking along +Z.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

# ----------------------------------------------------------------------------------------------------------
# Cityscapes label ids (cityscapesscripts.helpers.labels) used by the generator.
UNLABELED, EGO_VEHICLE = 0, 1
ROAD, SIDEWALK, BUILDING, WALL, FENCE = 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33

#: private (open-set) target-only classes: value stored in ``*_gtFine_privateIds.png``.
PRIVATE_NONE, PRIVATE_ANIMAL, PRIVATE_TUKTUK = 0, 1, 2
PRIVATE_CLASSES: Dict[int, str] = {PRIVATE_ANIMAL: "animal", PRIVATE_TUKTUK: "tuk-tuk"}

#: material names; the style maps (material, tone) to colour and texture.
MATERIALS: Tuple[str, ...] = (
    "sky", "asphalt", "lane_paint", "paving", "curb", "facade", "glass", "shopfront", "door", "roof",
    "concrete", "fence", "metal", "tl_housing", "lamp_red", "lamp_amber", "lamp_green", "sign_face",
    "sign_border", "sign_back", "foliage", "bark", "grass", "soil", "car_paint", "tyre", "rim", "car_light",
    "skin", "hair", "cloth_top", "cloth_bottom", "bus_paint", "truck_paint", "train_paint", "bike_frame",
    "fur", "tuktuk_paint", "interior", "ego_hood", "lamp_head", "rail",
)
M: Dict[str, int] = {name: i for i, name in enumerate(MATERIALS)}

#: depth models of a record: constant depth, ground plane (depth from the row), vertical plane X = c.
KIND_CONST, KIND_GROUND, KIND_XPLANE = 0, 1, 2

NEAR = 0.6  # near clipping depth (m)
SHIFT = 4  # fractional bits for sub-pixel rasterisation
_SCALE = float(1 << SHIFT)

N_UP = (0.0, 1.0, 0.0)
N_BACK = (0.0, 0.0, -1.0)
N_NONE = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at height ``h`` over flat ground; ``cy`` is the horizon row, ``cx`` the vanishing column."""

    width: int
    height: int
    f: float
    cx: float
    cy: float
    h: float

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Project world points (..., 3) to pixel coordinates (..., 2); depth is clamped to the near plane."""
        pts = np.asarray(pts, dtype=np.float64)
        out = np.empty(pts.shape[:-1] + (2,), np.float64)
        inv = self.f / np.maximum(pts[..., 2], NEAR)
        out[..., 0] = pts[..., 0] * inv
        out[..., 0] += self.cx
        out[..., 1] = (self.h - pts[..., 1]) * inv
        out[..., 1] += self.cy
        return out

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.f / max(z, NEAR)


@dataclass(frozen=True)
class Layout:
    """Per-domain scene statistics (camera, traffic density, street composition)."""

    cam_height: Tuple[float, float]
    horizon: Tuple[float, float]  # horizon row as a fraction of the image height
    focal: Tuple[float, float]  # focal length as a fraction of the image width
    yaw_px: float  # max horizontal vanishing-point offset as a fraction of width
    car_gap: float  # mean gap between moving vehicles in a lane (m)
    parked_p: float
    person_rate: float  # persons per 10 m of sidewalk
    p_building: float
    p_park: float
    p_crossing: float
    tree_p: float
    p_tram: float
    p_private: float  # fraction of frames that contain private (open-set) objects
    p_ego: float  # probability of an ego-vehicle hood at the bottom


LAYOUTS: Dict[str, Layout] = {
    # GTA-like: higher camera, wider field of view, busier roads, more parks.
    "game": Layout(cam_height=(1.6, 2.3), horizon=(0.40, 0.48), focal=(0.72, 0.9), yaw_px=0.06,
                   car_gap=14.0, parked_p=0.45, person_rate=0.9, p_building=0.58, p_park=0.3,
                   p_crossing=0.12, tree_p=0.55, p_tram=0.08, p_private=0.0, p_ego=0.0),
    # Cityscapes-like: low roof camera, narrower field of view, dense parked cars and buildings.
    "real": Layout(cam_height=(1.15, 1.5), horizon=(0.36, 0.47), focal=(0.95, 1.2), yaw_px=0.1,
                   car_gap=20.0, parked_p=0.75, person_rate=1.3, p_building=0.72, p_park=0.17,
                   p_crossing=0.11, tree_p=0.45, p_tram=0.06, p_private=0.3, p_ego=0.7),
}


@dataclass
class Records:
    """Per-primitive attributes, indexed by the value rasterised into the canvas buffer."""

    label: List[int] = field(default_factory=list)
    private: List[int] = field(default_factory=list)
    material: List[int] = field(default_factory=list)
    tone: List[int] = field(default_factory=list)
    normal: List[Tuple[float, float, float]] = field(default_factory=list)
    shade: List[float] = field(default_factory=list)
    depth: List[float] = field(default_factory=list)
    kind: List[int] = field(default_factory=list)
    plane: List[float] = field(default_factory=list)

    def add(self, label: int, material: int, tone: int, normal: Sequence[float], shade: float, depth: float,
            kind: int, plane: float, private: int) -> int:
        self.label.append(label)
        self.private.append(private)
        self.material.append(material)
        self.tone.append(int(tone) & 255)
        self.normal.append(tuple(normal))
        self.shade.append(float(shade))
        self.depth.append(float(depth))
        self.kind.append(kind)
        self.plane.append(float(plane))
        return len(self.label) - 1

    def arrays(self) -> Dict[str, np.ndarray]:
        """Records as numpy lookup tables (one entry per record id)."""
        return {
            "label": np.asarray(self.label, np.uint8),
            "private": np.asarray(self.private, np.uint8),
            "material": np.asarray(self.material, np.uint8),
            "tone": np.asarray(self.tone, np.uint8),
            "normal": np.asarray(self.normal, np.float32).reshape(-1, 3),
            "shade": np.asarray(self.shade, np.float32),
            "depth": np.asarray(self.depth, np.float32),
            "kind": np.asarray(self.kind, np.uint8),
            "plane": np.asarray(self.plane, np.float32),
        }


class Item:
    """One paintable object: an ordered list of draw ops sharing a sort key (layer, depth)."""

    __slots__ = ("canvas", "layer", "z", "ops")

    def __init__(self, canvas: "Canvas", layer: int, z: float) -> None:
        self.canvas, self.layer, self.z, self.ops = canvas, layer, z, []

    def _rec(self, label: int, mat: str, tone: int, normal: Sequence[float], shade: float, depth: Optional[float],
             kind: int, plane: float, private: int) -> int:
        return self.canvas.records.add(label, M[mat], tone, normal, shade, self.z if depth is None else depth,
                                       kind, plane, private)

    def poly(self, polys: Sequence[np.ndarray] | np.ndarray, label: int, mat: str, tone: int = 0,
             normal: Sequence[float] = N_BACK, shade: float = 1.0, depth: Optional[float] = None,
             kind: int = KIND_CONST, plane: float = 0.0, private: int = 0) -> None:
        """Fill one polygon (N, 2), a batch (K, N, 2) or a list of polygons given in pixel coordinates."""
        if len(polys) == 0:
            return
        if isinstance(polys, np.ndarray):
            fixed = _fixed(polys)
            fixed = [fixed] if polys.ndim == 2 else list(fixed)
        else:
            fixed = [_fixed(p) for p in polys]
        rid = self._rec(label, mat, tone, normal, shade, depth, kind, plane, private)
        self.ops.append(("fill", fixed, rid, 0))

    def line(self, pts: np.ndarray | Sequence[np.ndarray], thickness_px: float, label: int, mat: str,
             tone: int = 0, normal: Sequence[float] = N_BACK, shade: float = 1.0, depth: Optional[float] = None,
             closed: bool = False, private: int = 0) -> None:
        """Draw a polyline (or list of polylines) with a pixel thickness (at least 1)."""
        lines = [pts] if isinstance(pts, np.ndarray) and pts.ndim == 2 else list(pts)
        if not lines:
            return
        rid = self._rec(label, mat, tone, normal, shade, depth, KIND_CONST, 0.0, private)
        self.ops.append(("closed" if closed else "open", [_fixed(p) for p in lines], rid,
                         max(1, int(round(thickness_px)))))

    def disc(self, center: np.ndarray, radius_px: float, label: int, mat: str, tone: int = 0,
             normal: Sequence[float] = N_BACK, shade: float = 1.0, depth: Optional[float] = None,
             private: int = 0) -> None:
        """Fill a circle given in pixel coordinates."""
        if radius_px < 0.3:
            return
        n = int(np.clip(radius_px, 8, 24))
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        pts = np.stack([center[0] + radius_px * np.cos(t), center[1] + radius_px * np.sin(t)], axis=-1)
        self.poly(pts, label, mat, tone, normal, shade, depth, private=private)


_LIM = 1.0e6 * _SCALE


def _fixed(p: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> int32 fixed point (SHIFT fractional bits) shaped (..., N, 1, 2) for OpenCV."""
    a = np.asarray(p, np.float64) * _SCALE
    a = np.minimum(np.maximum(a, -_LIM), _LIM)
    a = np.rint(a).astype(np.int32)
    return a.reshape(a.shape[:-1] + (1, 2))


class Canvas:
    """Collects items and rasterises them far-to-near (layer ascending, then depth descending)."""

    def __init__(self, cam: Camera) -> None:
        self.cam = cam
        self.records = Records()
        self.items: List[Item] = []
        # record 0 is the sky, visible wherever nothing else is drawn
        self.records.add(SKY, M["sky"], 0, N_NONE, 1.0, 1.0e4, KIND_CONST, 0.0, 0)

    def item(self, layer: int, z: float) -> Item:
        it = Item(self, layer, float(z))
        self.items.append(it)
        return it

    def rasterize(self) -> np.ndarray:
        """Return the int32 (H, W) record-index buffer."""
        buf = np.zeros((self.cam.height, self.cam.width), np.int32)
        order = sorted(range(len(self.items)), key=lambda i: (self.items[i].layer, -self.items[i].z, i))
        for i in order:
            for op, polys, rid, thick in self.items[i].ops:
                color = (float(rid),)
                if op == "fill":
                    cv2.fillPoly(buf, polys, color, cv2.LINE_8, SHIFT)
                else:
                    cv2.polylines(buf, polys, op == "closed", color, thick, cv2.LINE_8, SHIFT)
        return buf


# ----------------------------------------------------------------------------------------------------------
# geometry helpers


def quad_x(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a vertical rectangle in the plane X = x."""
    return np.array([[x, y0, z0], [x, y1, z0], [x, y1, z1], [x, y0, z1]], np.float64)


def quad_z(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Corners of a vertical rectangle in the plane Z = z (facing the camera)."""
    return np.array([[x0, y0, z], [x0, y1, z], [x1, y1, z], [x1, y0, z]], np.float64)


def quad_y(y: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a horizontal rectangle at height y."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


def _quads_x(x: float, y0: float, y1: float, zs: np.ndarray, width: float) -> np.ndarray:
    """A batch (K, 4, 3) of thin vertical rectangles in the plane X = x starting at depths ``zs``."""
    zs = np.maximum(np.asarray(zs, np.float64), NEAR)
    k = len(zs)
    q = np.empty((k, 4, 3), np.float64)
    q[:, :, 0] = x
    q[:, :, 1] = np.array([y0, y1, y1, y0])
    q[:, :, 2] = zs[:, None] + np.array([0.0, 0.0, width, width])
    return q


def _clip_z(pts: np.ndarray) -> np.ndarray:
    pts = pts.copy()
    pts[..., 2] = np.maximum(pts[..., 2], NEAR)
    return pts


def noisy_blob(cx: float, cy: float, rx: float, ry: float, rng: np.random.Generator, n: int = 14,
               rough: float = 0.18) -> np.ndarray:
    """A rough ellipse (foliage crowns, hedges) as an (n, 2) pixel polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 0.4)
    r = 1.0 + rough * rng.standard_normal(n)
    return np.stack([cx + rx * r * np.cos(t), cy + ry * r * np.sin(t)], axis=-1)


# car-like side profiles (z as a fraction of length, y in metres); rear at z = 0
_PROFILES = {
    "sedan": ([(0.0, 0.30), (0.0, 0.92), (0.16, 0.98), (0.30, 1.40), (0.62, 1.43), (0.80, 0.98), (1.0, 0.86),
               (1.0, 0.30)], ["paint", "paint", "glass", "paint", "glass", "paint", "paint", "under"]),
    "hatch": ([(0.0, 0.30), (0.0, 1.0), (0.06, 1.42), (0.66, 1.48), (0.82, 1.0), (1.0, 0.88), (1.0, 0.30)],
              ["paint", "glass", "paint", "glass", "paint", "paint", "under"]),
    "van": ([(0.0, 0.32), (0.0, 1.85), (0.85, 1.90), (0.93, 1.15), (1.0, 1.0), (1.0, 0.32)],
            ["paint", "paint", "glass", "paint", "paint", "under"]),
    "bus": ([(0.0, 0.35), (0.0, 3.0), (0.02, 3.1), (0.98, 3.1), (1.0, 3.0), (1.0, 0.35)],
            ["paint", "paint", "paint", "paint", "paint", "under"]),
    "box": ([(0.0, 0.6), (0.0, 3.6), (1.0, 3.6), (1.0, 0.6)], ["paint", "paint", "paint", "under"]),
    "cab": ([(0.0, 0.5), (0.0, 2.9), (0.85, 2.9), (1.0, 2.0), (1.0, 0.5)], ["paint", "paint", "glass", "paint", "under"]),
    "tram": ([(0.0, 0.45), (0.0, 3.2), (0.01, 3.4), (0.99, 3.4), (1.0, 3.2), (1.0, 0.45)],
             ["paint", "glass", "paint", "paint", "paint", "under"]),
}


class SceneBuilder:
    """Samples one street scene for a domain layout and paints it on a :class:`Canvas`."""

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
        self.paint_paths = {"car": "car_paint", "bus": "bus_paint", "truck": "truck_paint", "tram": "train_paint",
                            "tuktuk": "tuktuk_paint"}

    # -- helpers ---------------------------------------------------------------------------------------
    def visible(self, z: float, size_m: float) -> bool:
        return z > NEAR and size_m * self.cam.scale(z) >= 1.2

    def _tone(self) -> int:
        return int(self.rng.integers(0, 256))

    # -- top level -----------------------------------------------------------------------------------
    def build(self) -> Canvas:
        r, lay = self.rng, self.lay
        lane_w = r.uniform(3.0, 3.7)
        n_right = int(r.choice([1, 1, 2, 2, 3]))
        n_left = int(r.choice([0, 1, 1, 2, 2]))
        lane_idx = int(r.integers(0, n_right))  # camera lane, counted from the centre line
        x_center = -(lane_idx + 0.5) * lane_w + r.uniform(-0.4, 0.4)
        self.lane_w, self.n_right, self.n_left = lane_w, n_right, n_left
        self.road_l, self.road_r = x_center - n_left * lane_w, x_center + n_right * lane_w
        self.x_center = x_center
        self.z_end = float(r.choice([r.uniform(45, 120), r.uniform(120, 260), 2000.0], p=[0.35, 0.35, 0.3]))
        self.tone_road = self._tone()
        sides = {}
        for side in (-1, 1):
            strip = r.uniform(0.8, 2.2) if r.random() < 0.25 else 0.0
            sw = r.uniform(2.0, 5.5)
            edge = self.road_r if side > 0 else self.road_l
            sides[side] = dict(edge=edge, strip=strip, sw=sw, xb=abs(edge) + strip + sw)
        self.sides = sides

        self._ground()
        for side in (-1, 1):
            self._boundary(side)
        self._backdrop()
        for side in (-1, 1):
            self._furniture(side)
        self._traffic()
        if r.random() < lay.p_tram:
            self._tram()
        if self.private_frame:
            self._private_objects()
        if r.random() < lay.p_ego:
            self._ego_hood()
        return self.canvas

    # -- ground ----------------------------------------------------------------------------------------
    def _ground_quad(self, item: Item, x0: float, x1: float, z0: float, z1: float, label: int, mat: str,
                     tone: int, shade: float = 1.0, y: float = 0.0) -> None:
        pts = _clip_z(quad_y(y, x0, x1, max(z0, NEAR), z1))
        item.poly(self.cam.project(pts), label, mat, tone, N_UP, shade, z0, KIND_GROUND)

    def _ground(self) -> None:
        r, zf = self.rng, 3000.0
        it = self.canvas.item(0, 1e5)
        # a broad terrain underlay (visible only far away, beyond the city blocks)
        self._ground_quad(it, -400, 400, NEAR, zf, TERRAIN, "grass", self._tone())
        self._ground_quad(it, self.road_l, self.road_r, NEAR, zf, ROAD, "asphalt", self.tone_road)
        # repaired asphalt patches and manholes (same label, different appearance)
        for _ in range(int(r.integers(0, 4))):
            z0 = r.uniform(4, 40)
            x0 = r.uniform(self.road_l, self.road_r - 1)
            self._ground_quad(it, x0, x0 + r.uniform(0.8, 3), z0, z0 + r.uniform(1, 6), ROAD, "asphalt",
                              self._tone(), shade=r.uniform(0.85, 1.1))
        for side in (-1, 1):
            s = self.sides[side]
            e, st, sw = s["edge"], s["strip"], s["sw"]
            xs = [e, e + side * st, e + side * (st + sw), side * (s["xb"] + 60)]
            tone_sw = self._tone()
            lo = lambda a, b: (min(a, b), max(a, b))  # noqa: E731
            if st > 0:
                self._ground_quad(it, *lo(xs[0], xs[1]), NEAR, zf, TERRAIN, "grass", self._tone())
            self._ground_quad(it, *lo(xs[1], xs[2]), NEAR, zf, SIDEWALK, "paving", tone_sw)
            # curb: a thin raised strip along the road edge
            cw = 0.18
            self._ground_quad(it, *lo(xs[1], xs[1] + side * cw), NEAR, zf, SIDEWALK, "curb", self._tone(), y=0.0)
            self._ground_quad(it, *lo(xs[2], xs[3]), NEAR, zf, SIDEWALK, "paving", tone_sw, shade=0.95)
        # lane markings: dashed centre/lane lines
        tone_paint = self._tone()
        dash = r.uniform(2.0, 4.0)
        period = dash + r.uniform(3.0, 9.0)
        marks = []
        lines_x = [self.x_center + k * self.lane_w for k in range(-self.n_left + 1, self.n_right)]
        for k, lx in enumerate(lines_x):
            solid = abs(lx - self.x_center) < 0.1 and self.n_left > 0 and r.random() < 0.5
            zs = [(1.0, 160.0)] if solid else [(z, z + dash) for z in np.arange(r.uniform(0, period), 160, period)]
            for z0, z1 in zs:
                marks.append(self.cam.project(_clip_z(quad_y(0.0, lx - 0.07, lx + 0.07, z0, z1))))
        for side in (-1, 1):  # edge lines
            if r.random() < 0.5:
                ex = self.sides[side]["edge"] - side * 0.3
                marks.append(self.cam.project(_clip_z(quad_y(0.0, ex - 0.07, ex + 0.07, NEAR, 160))))
        if marks:
            it.poly(marks, ROAD, "lane_paint", tone_paint, N_UP, 1.0, 5.0, KIND_GROUND)
        self.tone_paint = tone_paint

    # -- street boundary: buildings, parks, walls, fences, crossings --------------------------------------
    def _boundary(self, side: int) -> None:
        r, lay = self.rng, self.lay
        s = self.sides[side]
        z, zmax = r.uniform(-15, 2), min(self.z_end, 260.0)
        prev = "building"
        self.crossings: List[Tuple[float, float]] = getattr(self, "crossings", [])
        while z < zmax:
            p = np.array([lay.p_building, lay.p_park, lay.p_crossing])
            kind = r.choice(["building", "park", "crossing"], p=p / p.sum())
            if kind == "crossing" and (prev == "crossing" or z < 8):
                kind = "building"
            if kind == "building":
                length = r.uniform(10, 45)
                self._building(side, s["xb"] + (r.uniform(0, 2.0) if r.random() < 0.3 else 0.0), z, z + length,
                               deep=prev in ("crossing", "park"))
            elif kind == "park":
                length = r.uniform(15, 50)
                self._park(side, s["xb"], z, z + length)
            else:
                length = r.uniform(9, 16)
                self._crossing(side, z, z + length)
            z += length
            prev = kind

    def _building(self, side: int, xb: float, z0: float, z1: float, deep: bool) -> None:
        r, cam = self.rng, self.cam
        X = side * xb
        H = float(r.choice([r.uniform(6, 12), r.uniform(12, 22), r.uniform(22, 40)], p=[0.35, 0.45, 0.2]))
        zc0 = max(z0, NEAR)
        if z1 <= NEAR:
            return
        it = self.canvas.item(2, zc0)
        tone = self._tone()
        nrm = (-float(side), 0.0, 0.0)
        # front-end face (visible next to gaps/parks/crossings or setbacks)
        if z0 > NEAR:
            D = r.uniform(30, 70) if deep else r.uniform(8, 20)
            it.poly(cam.project(quad_z(z0, min(X, X + side * D), max(X, X + side * D), 0, H)), BUILDING, "facade",
                    tone, N_BACK, 1.0, z0)
        it.poly(cam.project(_clip_z(quad_x(X, 0, H, zc0, z1))), BUILDING, "facade", tone, nrm, 1.0, zc0,
                KIND_XPLANE, X)
        # roof-line cornice
        it.poly(cam.project(_clip_z(quad_x(X, H - 0.5, H, zc0, z1))), BUILDING, "roof", self._tone(), nrm, 0.9,
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
                gtone = self._tone() % 200  # unlit glass tones < 200
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
                    shops.append(cam.project(_clip_z(quad_x(X, 0.4, min(2.6, fh - 0.3), zz, min(zz + w, z1 - 0.5)))))
                else:
                    doors.append(cam.project(_clip_z(quad_x(X, 0.0, 2.2, zz, zz + 1.2))))
                zz += w + r.uniform(0.5, 2)
            it.poly(shops, BUILDING, "shopfront", self._tone(), nrm, 1.0, zc0, KIND_XPLANE, X)
            it.poly(doors, BUILDING, "door", self._tone(), nrm, 1.0, zc0, KIND_XPLANE, X)
        # awning / sign band sometimes
        if ground_shop and r.random() < 0.4:
            it.poly(cam.project(_clip_z(quad_x(X - side * 0.05, 2.7, 3.2, zc0, z1))), BUILDING, "facade",
                    self._tone(), nrm, 1.1, zc0, KIND_XPLANE, X)

    def _tree(self, item: Item, x: float, z: float, height: float, crown: float) -> None:
        cam, r = self.cam, self.rng
        if not self.visible(z, 0.3):
            return
        s = cam.scale(z)
        base = cam.project(np.array([x, 0.0, z]))
        top = cam.project(np.array([x, height, z]))
        tw = max(0.25 * s, 1.0)
        trunk_top = base[1] + 0.55 * (top[1] - base[1])
        item.poly(np.array([[base[0] - tw / 2, base[1]], [base[0] - tw / 3, trunk_top], [base[0] + tw / 3, trunk_top],
                            [base[0] + tw / 2, base[1]]]), VEGETATION, "bark", self._tone(), N_BACK, 1.0, z)
        cy = top[1] + crown * s * 0.9
        tone = self._tone()
        n_blobs = int(r.integers(2, 5)) if crown * s >= 8 else 1  # level of detail
        blobs = [noisy_blob(base[0] + r.uniform(-0.4, 0.4) * crown * s, cy + r.uniform(-0.3, 0.4) * crown * s,
                            crown * s * r.uniform(0.6, 1.0), crown * s * r.uniform(0.55, 0.9), r)
                 for _ in range(n_blobs)]
        for k, b in enumerate(blobs):
            item.poly(b, VEGETATION, "foliage", tone, (0.0, 0.3 - 0.2 * k, -1.0), 1.0 - 0.07 * k, z)

    def _park(self, side: int, xb: float, z0: float, z1: float) -> None:
        r, cam = self.rng, self.cam
        if z1 <= NEAR:
            return
        X = side * xb
        g = self.canvas.item(0, 1e4)
        xs = sorted([X, X + side * 40])
        self._ground_quad(g, xs[0], xs[1], z0, z1, TERRAIN, "grass", self._tone())
        if r.random() < 0.4:  # a footpath through the park
            px = X + side * r.uniform(3, 10)
            self._ground_quad(g, min(px, px + side * 2), max(px, px + side * 2), z0, z1, SIDEWALK, "paving",
                              self._tone())
        # trees behind the boundary
        n_trees = int(r.integers(2, 9)) if z0 < 120 else int(r.integers(0, 3))  # far parks: fewer, tiny trees
        for _ in range(n_trees if z1 > 3.0 else 0):
            tz = r.uniform(max(z0, 2.0), z1)
            tx = X + side * r.uniform(2, 25)
            it = self.canvas.item(2, tz)
            self._tree(it, tx, tz, r.uniform(5, 14), r.uniform(1.8, 4.5))
        # a building behind the park
        if r.random() < 0.6:
            bx = X + side * r.uniform(25, 45)
            bt = self.canvas.item(1, max(z0, NEAR))
            H = r.uniform(8, 30)
            bt.poly(cam.project(_clip_z(quad_x(bx, 0, H, max(z0, NEAR), z1))), BUILDING, "facade", self._tone(),
                    (-float(side), 0, 0), 1.0, max(z0, NEAR), KIND_XPLANE, bx)
        # boundary treatment: hedge, wall, fence or open
        kind = r.choice(["hedge", "wall", "fence", "open"], p=[0.3, 0.3, 0.3, 0.1])
        zc0 = max(z0, NEAR)
        step = 6.0
        for za in np.arange(zc0, z1, step):
            zb = min(za + step, z1)
            it = self.canvas.item(2, za)
            nrm = (-float(side), 0.0, 0.0)
            if kind == "hedge":
                h = r.uniform(0.9, 1.8)
                n = 10
                zs = np.linspace(za, zb, n)
                top = h + 0.12 * r.standard_normal(n)
                pts = np.concatenate([np.stack([np.full(n, X), top, zs], -1),
                                      np.array([[X, 0, zb], [X, 0, za]])])
                it.poly(cam.project(pts), VEGETATION, "foliage", self._tone(), nrm, 0.9, za, KIND_XPLANE, X)
                if h < cam.h:
                    it.poly(cam.project(quad_y(h, min(X, X + side), max(X, X + side), za, zb)), VEGETATION,
                            "foliage", self._tone(), N_UP, 1.1, za, KIND_GROUND)
            elif kind == "wall":
                self._wall(it, X, za, zb, r.uniform(0.8, 2.6), side)
            elif kind == "fence":
                self._fence(it, X, za, zb, r.uniform(1.0, 2.0), side)

    def _wall(self, it: Item, X: float, za: float, zb: float, h: float, side: int) -> None:
        cam = self.cam
        tone = getattr(self, "_wall_tone", None)
        if tone is None:
            tone = self._wall_tone = self._tone()
        nrm = (-float(side), 0.0, 0.0)
        it.poly(cam.project(_clip_z(quad_x(X, 0, h, za, zb))), WALL, "concrete", tone, nrm, 1.0, za, KIND_XPLANE, X)
        if h < cam.h:
            it.poly(cam.project(_clip_z(quad_y(h, min(X, X + side * 0.3), max(X, X + side * 0.3), za, zb))), WALL,
                    "concrete", tone, N_UP, 1.15, za, KIND_GROUND)

    def _fence(self, it: Item, X: float, za: float, zb: float, h: float, side: int) -> None:
        cam = self.cam
        tone = getattr(self, "_fence_tone", None)
        if tone is None:
            tone = self._fence_tone = self._tone()
        style = tone % 3
        posts = list(cam.project(_quads_x(X, 0.0, h, np.arange(za, zb, 2.5), 0.1)))
        rails = [cam.project(_clip_z(quad_x(X, y, y + 0.06, za, zb))) for y in (0.15, h - 0.08)]
        bars: List[np.ndarray] = []
        if style == 0:  # dense vertical bars
            zs = np.arange(za, zb, 0.14)
            bars = list(cam.project(_quads_x(X, 0.1, h, zs[zs > 2], 0.04)))
            if za <= 2:
                bars.append(cam.project(_clip_z(quad_x(X, 0.1, h, NEAR, 2))))
        nrm = (-float(side), 0.0, 0.0)
        it.poly(posts + rails + bars, FENCE, "fence", tone, nrm, 1.0, za, KIND_XPLANE, X)

    def _crossing(self, side: int, z0: float, z1: float) -> None:
        r, cam = self.rng, self.cam
        s = self.sides[side]
        g = self.canvas.item(0, 1e4)
        x0 = s["edge"]
        x1 = side * (s["xb"] + 80)
        self._ground_quad(g, min(x0, x1), max(x0, x1), z0, z1, ROAD, "asphalt", self.tone_road)
        self.crossings.append((z0, z1))
        # zebra stripes across the main road just before the crossing
        if r.random() < 0.6 and z0 > 4:
            stripes = []
            for x in np.arange(self.road_l + 0.3, self.road_r - 0.3, 1.0):
                stripes.append(cam.project(_clip_z(quad_y(0.0, x, x + 0.5, z0 - 4, z0 - 1))))
            g.poly(stripes, ROAD, "lane_paint", self.tone_paint, N_UP, 1.0, z0, KIND_GROUND)
        # traffic lights at the near corner
        if r.random() < 0.75 and z0 > 3:
            self._traffic_light(s["edge"] + side * 0.6, z0 - 0.5, overhead=r.random() < 0.4, side=side)

    def _backdrop(self) -> None:
        """Buildings across the far end of the street (or open horizon)."""
        r, cam = self.rng, self.cam
        if self.z_end > 1000:
            # distant tree line / skyline on the horizon
            it = self.canvas.item(1, 1500)
            if r.random() < 0.5:
                xs = np.linspace(-1500, 1500, 40)
                hs = r.uniform(8, 30, len(xs))
                pts = np.concatenate([np.stack([xs, hs, np.full_like(xs, 1500)], -1),
                                      np.array([[1500, 0, 1500], [-1500, 0, 1500]])])
                it.poly(cam.project(pts), VEGETATION, "foliage", self._tone(), N_BACK, 0.85, 1500)
            return
        z = self.z_end
        x = -150.0
        while x < 150:
            w = r.uniform(8, 30)
            it = self.canvas.item(1, z)
            H = r.uniform(8, 35)
            it.poly(cam.project(quad_z(z + r.uniform(0, 6), x, x + w, 0, H)), BUILDING, "facade", self._tone(),
                    N_BACK, 1.0, z)
            x += w

    # -- street furniture ------------------------------------------------------------------------------
    def _pole(self, it: Item, x: float, z: float, h: float, width: float = 0.12, tone: Optional[int] = None) -> None:
        cam = self.cam
        p = cam.project(np.array([[x - width / 2, 0, z], [x - width / 2, h, z], [x + width / 2, h, z],
                                  [x + width / 2, 0, z]]))
        if p[3, 0] - p[0, 0] < 1.0:  # keep poles at least one pixel wide
            c = (p[0, 0] + p[3, 0]) / 2
            p[[0, 1], 0], p[[2, 3], 0] = c - 0.5, c + 0.5
        it.poly(p, POLE, "metal", self._tone() if tone is None else tone, N_BACK, 1.0, z)

    def _traffic_light(self, x: float, z: float, overhead: bool, side: int) -> None:
        r, cam = self.rng, self.cam
        if not self.visible(z, 0.2):
            return
        it = self.canvas.item(3, z)
        h = r.uniform(2.6, 3.4)
        self._pole(it, x, z, h + (2.5 if overhead else 0.6))
        s = cam.scale(z)
        backside = r.random() < 0.2
        boxes = [(x, h)]
        if overhead:
            arm_len = r.uniform(3, 6)
            ax = x - side * arm_len
            top = h + 2.4
            it.poly(cam.project(np.array([[x, top, z], [x, top + 0.12, z], [ax, top + 0.12, z], [ax, top, z]])),
                    POLE, "metal", self._tone(), N_BACK, 1.0, z)
            boxes = [(ax + side * 0.3, top - 1.1), (x - side * 0.2, h)]
        lit = int(r.integers(0, 3))
        for bx, by in boxes:
            w, hh = 0.35, 1.0
            c = cam.project(np.array([bx, by + hh / 2, z]))
            rect = np.array([[c[0] - w * s / 2, c[1] - hh * s / 2], [c[0] + w * s / 2, c[1] - hh * s / 2],
                             [c[0] + w * s / 2, c[1] + hh * s / 2], [c[0] - w * s / 2, c[1] + hh * s / 2]])
            it.poly(rect, TRAFFIC_LIGHT, "tl_housing", self._tone(), N_BACK, 1.0, z)
            if not backside:
                for k, mat in enumerate(("lamp_red", "lamp_amber", "lamp_green")):
                    tone = 230 if k == lit else 30
                    it.disc(np.array([c[0], c[1] + (k - 1) * 0.3 * s]), 0.11 * s, TRAFFIC_LIGHT, mat, tone, N_BACK,
                            1.0, z)

    def _sign(self, it: Item, x: float, z: float, y: float, kind: Optional[str] = None) -> None:
        r, cam = self.rng, self.cam
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
        tone = self._tone()
        if back:
            it.poly(outer + c, TRAFFIC_SIGN, "sign_back", tone, N_BACK, 1.0, z)
        else:
            it.poly(outer + c, TRAFFIC_SIGN, "sign_border", tone, N_BACK, 1.0, z)
            it.poly(outer * 0.72 + c, TRAFFIC_SIGN, "sign_face", tone, N_BACK, 1.0, z)

    def _sign_post(self, x: float, z: float) -> None:
        if not self.visible(z, 0.1):
            return
        it = self.canvas.item(3, z)
        h = self.rng.uniform(2.2, 3.0)
        self._pole(it, x, z, h + 0.3, 0.08)
        self._sign(it, x, z, h)
        if self.rng.random() < 0.35:
            self._sign(it, x, z, h - 0.8)

    def _lamp(self, x: float, z: float, side: int) -> None:
        r, cam = self.rng, self.cam
        if not self.visible(z, 0.1):
            return
        it = self.canvas.item(3, z)
        h = r.uniform(5.5, 9.0)
        tone = self._tone()
        self._pole(it, x, z, h, 0.16, tone)
        arm = r.uniform(0.8, 2.5)
        ax = x - side * arm
        pts = cam.project(np.array([[x, h - 0.1, z], [x, h + 0.05, z], [ax, h + 0.05, z], [ax, h - 0.1, z]]))
        it.poly(pts, POLE, "metal", tone, N_BACK, 1.0, z)
        head = cam.project(np.array([[ax - 0.35, h - 0.1, z], [ax + 0.35, h - 0.1, z], [ax + 0.25, h - 0.3, z],
                                     [ax - 0.25, h - 0.3, z]]))
        it.poly(head, POLE, "lamp_head", 220, N_BACK, 1.0, z)
        if r.random() < 0.25:  # a sign mounted on the lamp post
            self._sign(it, x, z, r.uniform(2.2, 2.8))

    def _furniture(self, side: int) -> None:
        r, lay = self.rng, self.lay
        s = self.sides[side]
        curb_x = s["edge"] + side * (s["strip"] + 0.5)
        zmax = min(self.z_end, 140.0)
        # lamps
        spacing = r.uniform(18, 35)
        for z in np.arange(r.uniform(3, spacing), zmax, spacing):
            self._lamp(curb_x, z, side)
        # sign posts
        for _ in range(int(r.poisson(1.6))):
            self._sign_post(curb_x + side * r.uniform(0, 0.4), r.uniform(4, 60))
        # bollards / extra poles
        if r.random() < 0.3:
            z0 = r.uniform(3, 20)
            for z in np.arange(z0, z0 + r.uniform(5, 20), 1.6):
                it = self.canvas.item(3, z)
                self._pole(it, curb_x, z, 0.9, 0.15)
        # a standalone traffic light
        if r.random() < 0.25:
            self._traffic_light(curb_x, r.uniform(8, 45), overhead=r.random() < 0.5, side=side)
        # street trees (in pits or on the grass strip)
        if r.random() < lay.tree_p:
            spacing = r.uniform(7, 15)
            tx = s["edge"] + side * (s["strip"] / 2 if s["strip"] > 0 else 1.0)
            tone_pit = self._tone()
            for z in np.arange(r.uniform(2, spacing), zmax, spacing):
                if any(a - 2 < z < b + 2 for a, b in self.crossings):
                    continue
                it = self.canvas.item(3, z)
                if s["strip"] == 0 and r.random() < 0.6:
                    pit = self.canvas.item(0, 1e3)
                    self._ground_quad(pit, tx - 0.6, tx + 0.6, z - 0.6, z + 0.6, TERRAIN, "soil", tone_pit)
                self._tree(it, tx, z, r.uniform(4.5, 11), r.uniform(1.5, 3.5))
        # low walls / fences along the curb
        if r.random() < 0.2:
            z0 = r.uniform(2, 30)
            z1 = z0 + r.uniform(8, 30)
            fx = s["edge"] + side * (s["strip"] + 0.25)
            wall = r.random() < 0.4
            for za in np.arange(z0, z1, 5.0):
                it = self.canvas.item(3, za)
                if wall:
                    self._wall(it, fx, za, min(za + 5, z1), r.uniform(0.5, 1.0), side)
                else:
                    self._fence(it, fx, za, min(za + 5, z1), r.uniform(0.8, 1.2), side)
        # pedestrians
        zp = min(zmax, 80.0)
        n = int(r.poisson(lay.person_rate * zp / 10 * r.uniform(0.2, 1.5)))
        for _ in range(n):
            z = float(r.uniform(2.5, zp))
            x = side * (abs(s["edge"]) + s["strip"] + r.uniform(0.4, s["sw"] - 0.3))
            self._person(self.canvas.item(3, z), x, z, rider=False)
        # parked bicycles
        for _ in range(int(r.poisson(0.5))):
            z = r.uniform(3, 40)
            x = side * (abs(s["edge"]) + s["strip"] + r.uniform(0.3, 1.2))
            self._two_wheeler(x, z, heading=r.uniform(-0.4, 0.4) + (0 if side > 0 else np.pi), motor=False,
                              with_rider=False)
        # parked cars along the curb
        cx = s["edge"] - side * 1.1
        if r.random() < lay.parked_p and abs(cx) > 2.8:  # never parked right in front of the camera
            z = r.uniform(1.0, 8)
            while z < min(zmax, 90):
                if not any(a - 3 < z < b + 1 for a, b in self.crossings):
                    self._vehicle("car", cx, z, oncoming=False)
                z += r.uniform(4.8, 9.0)

    # -- people and two-wheelers (orthographic part models) -------------------------------------------
    def _parts(self, it: Item, base: np.ndarray, z: float, heading: float,
               parts: List[Tuple[str, np.ndarray, int, str, int, int]]) -> None:
        """Draw parts given in local coordinates (u forward, w left, v up); heading 0 = moving right."""
        cam = self.cam
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

    @staticmethod
    def _box(u0: float, u1: float, w0: float, w1: float, v0: float, v1: float) -> np.ndarray:
        return np.array([[u, w, v] for u in (u0, u1) for w in (w0, w1) for v in (v0, v1)], np.float64)

    @staticmethod
    def _circle_uv(u: float, w: float, v: float, rad: float, n: int = 14) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.stack([u + rad * np.cos(t), np.full(n, w), v + rad * np.sin(t)], -1)

    def _body_parts(self, label: int, seated: bool, height: float) -> List[tuple]:
        r = self.rng
        k = height / 1.75
        top, bottom, skin, hair = self._tone(), self._tone(), self._tone(), self._tone()
        B = self._box
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
                      ("hull", B(-0.06 - stride / 2, 0.06 - stride / 2, -0.28, -0.2, 0.85, 1.45), label, "cloth_top", top, 0),
                      ("hull", B(-0.06 + stride / 2, 0.06 + stride / 2, 0.2, 0.28, 0.85, 1.45), label, "cloth_top", top, 0),
                      ("disc", np.array([[0.0, 0.0, 1.6, 0.12]]), label, "skin", skin, 0),
                      ("disc", np.array([[-0.02, 0.0, 1.64, 0.11]]), label, "hair", hair, 0)]
            if r.random() < 0.25:  # a bag
                parts.append(("hull", B(-0.2, -0.05, 0.2, 0.35, 0.8, 1.1), label, "cloth_bottom", self._tone(), 0))
        out = []
        for op, pts, lab, mat, tone, priv in parts:
            pts = np.array(pts, np.float64)
            pts[:, :3] *= k
            out.append((op, pts, lab, mat, tone, priv))
        return out

    def _person(self, it: Item, x: float, z: float, rider: bool = False) -> None:
        r, cam = self.rng, self.cam
        height = r.uniform(1.5, 1.95) if r.random() > 0.1 else r.uniform(1.0, 1.4)
        if not self.visible(z, height / 4):
            return
        base = cam.project(np.array([x, 0.0, z]))
        self._parts(it, base, z, r.uniform(0, 2 * np.pi), self._body_parts(PERSON, False, height))

    def _two_wheeler(self, x: float, z: float, heading: float, motor: bool, with_rider: bool) -> None:
        r, cam = self.rng, self.cam
        if not self.visible(z, 0.3):
            return
        it = self.canvas.item(3, z)
        label = MOTORCYCLE if motor else BICYCLE
        frame = self._tone()
        parts: List[tuple] = []
        wr = 0.31 if motor else 0.34
        for u in (-0.55, 0.55):
            if motor:
                parts.append(("fill", self._circle_uv(u, 0.0, wr, wr), label, "tyre", self._tone(), 0))
                parts.append(("fill", self._circle_uv(u, 0.0, wr, wr * 0.55), label, "rim", self._tone(), 0))
            else:
                parts.append(("ring", self._circle_uv(u, 0.0, wr, wr), label, "tyre", self._tone(), 0))
        if motor:
            parts.append(("hull", self._box(-0.5, 0.45, -0.18, 0.18, 0.35, 0.85), label, "bike_frame", frame, 0))
            parts.append(("hull", self._box(-0.1, 0.35, -0.2, 0.2, 0.75, 1.0), label, "bike_frame", frame, 0))
            parts.append(("line", np.array([[0.45, -0.38, 1.05], [0.45, 0.38, 1.05]]), label, "metal", 0, 0))
            parts.append(("line", np.array([[0.55, 0, wr], [0.45, 0, 1.05]]), label, "metal", 0, 0))
        else:
            tri = np.array([[-0.55, 0, wr], [-0.1, 0, 0.85], [0.45, 0, 0.85], [0.0, 0, wr], [-0.55, 0, wr]])
            parts.append(("line", tri, label, "bike_frame", frame, 0))
            parts.append(("line", np.array([[0.55, 0, wr], [0.45, 0, 1.0]]), label, "bike_frame", frame, 0))
            parts.append(("line", np.array([[0.42, -0.3, 1.0], [0.42, 0.3, 1.0]]), label, "metal", 0, 0))
            parts.append(("hull", self._box(-0.2, 0.0, -0.06, 0.06, 0.88, 0.95), label, "bike_frame", 0, 0))
        if with_rider:
            height = r.uniform(1.6, 1.9)
            body = self._body_parts(RIDER, True, height)
            lift = (0.35 if motor else 0.25)
            for op, pts, lab, mat, tone, priv in body:
                pts = pts.copy()
                pts[:, 2] += lift
                pts[:, 0] -= 0.1
                parts.append((op, pts, lab, mat, tone, priv))
            if motor and r.random() < 0.8:  # helmet
                parts.append(("disc", np.array([[0.15, 0.0, 1.62 * height / 1.75 + lift, 0.16]]), RIDER, "bike_frame",
                              self._tone(), 0))
        base = cam.project(np.array([x, 0.0, z]))
        self._parts(it, base, z, heading, parts)

    # -- vehicles (extruded profiles in true perspective) -------------------------------------------
    def _prism(self, it: Item, kind: str, x0: float, x1: float, z0: float, length: float, hscale: float,
               label: int, mat: str, tone: int, oncoming: bool, private: int = 0) -> None:
        """Extrude a side profile along X and draw its camera-facing faces (true perspective)."""
        cam = self.cam
        prof, faces = _PROFILES[kind]
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
            it.poly(cam.project(_clip_z(quad_z(z0, x0, x1, yy.min(), yy.max()))), label, mat, tone, N_BACK, 1.0,
                    max(z0, NEAR), private=private)
            if xs is not None:
                it.poly(cam.project(_clip_z(np.stack([np.full(n, xs), yy, zz], -1))), label, mat, tone,
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
            it.poly(cam.project(_clip_z(face)), label, fmat, tone if fmat == mat else self._tone() % 200, nrm, 1.0,
                    max(depth, NEAR), private=private)
        # the visible side (if any)
        if xs is not None:
            side_pts = np.stack([np.full(n, xs), yy, zz], -1)
            nrm = (-1.0 if xs > 0 else 1.0, 0.0, 0.0)
            it.poly(cam.project(_clip_z(side_pts)), label, mat, tone, nrm, 1.0, max(zz.min(), NEAR), KIND_XPLANE, xs,
                    private=private)
            # side windows
            gl = [k for k, f in enumerate(faces) if f == "glass"]
            if kind in ("sedan", "hatch", "van"):
                ytop = yy.max() - 0.08 * hscale
                ybot = (0.98 if kind != "van" else 1.1) * hscale + 0.04
                zs = np.sort(zz[[g for k in gl for g in (k, (k + 1) % n)]]) if gl else np.array([zz.min(), zz.max()])
                za, zb = zs[0] + 0.15 * length, zs[-1] - 0.1 * length
                if zb > za:
                    it.poly(cam.project(_clip_z(quad_x(xs, ybot, ytop, za, zb))), label,
                            "interior" if private else "glass", self._tone() % 200, nrm, 1.0, max(za, NEAR),
                            KIND_XPLANE, xs, private=private)
            elif kind in ("bus", "tram"):
                wins = []
                yb, yt = 1.3 * hscale, 2.5 * hscale
                for za in np.arange(z0 + 0.5, z0 + length - 1.5, 1.6 if kind == "bus" else 2.2):
                    wins.append(cam.project(_clip_z(quad_x(xs, yb, yt, za, za + (1.3 if kind == "bus" else 1.8)))))
                it.poly(wins, label, "glass", self._tone() % 200, nrm, 1.0, max(z0, NEAR), KIND_XPLANE, xs)
            # wheels on the side
            wr = 0.33 if kind in ("sedan", "hatch") else 0.45
            wheel_z = [z0 + 0.18 * length, z0 + 0.82 * length] if kind != "tram" else \
                [z0 + 0.1 * length, z0 + 0.2 * length, z0 + 0.8 * length, z0 + 0.9 * length]
            if kind in ("bus", "box"):
                wheel_z = [z0 + 0.2 * length, z0 + 0.75 * length]
            if kind == "cab":
                wheel_z = [z0 + 0.6 * length]
            t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
            wheels = [cam.project(_clip_z(np.stack([np.full_like(t, xs), wr + wr * np.sin(t), wz + wr * np.cos(t)], -1)))
                      for wz in wheel_z]
            it.poly(wheels, label, "tyre", self._tone(), nrm, 1.0, max(z0, NEAR), private=private)
        # rear/front details on the camera-facing end
        zface = z0  # the camera-facing end (rear, or front for oncoming traffic)
        if kind in ("sedan", "hatch", "van", "bus", "box", "tram"):
            yl = (0.7 if kind in ("sedan", "hatch") else 0.9) * hscale
            w = x1 - x0
            lights = [quad_z(zface, x0 + 0.05 * w, x0 + 0.2 * w, yl, yl + 0.15),
                      quad_z(zface, x1 - 0.2 * w, x1 - 0.05 * w, yl, yl + 0.15)]
            it.poly([cam.project(_clip_z(q)) for q in lights], label, "car_light", 240 if oncoming else 20, N_BACK,
                    1.0, max(zface, NEAR), private=private)
            tyres = [quad_z(zface + 0.4, x0 + 0.08, x0 + 0.32, 0, 0.4), quad_z(zface + 0.4, x1 - 0.32, x1 - 0.08, 0, 0.4)]
            it.poly([cam.project(_clip_z(q)) for q in tyres], label, "tyre", 10, N_BACK, 1.0, max(zface, NEAR),
                    private=private)
            if kind in ("sedan", "hatch", "van"):  # license plate (counts as car in Cityscapes label ids)
                it.poly(cam.project(_clip_z(quad_z(zface - 0.01, (x0 + x1) / 2 - 0.26, (x0 + x1) / 2 + 0.26,
                                                   0.4 * hscale, 0.52 * hscale))), label, "sign_back", 250, N_BACK,
                        1.0, max(zface, NEAR), private=private)

    def _vehicle(self, kind: str, xc: float, z: float, oncoming: bool) -> None:
        r, cam = self.rng, self.cam
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
        if z < 1.5 or not self.visible(z, 0.5):
            return
        it = self.canvas.item(3, z)
        label = {"car": CAR, "bus": BUS, "truck": TRUCK}[kind]
        tone = self._tone()
        shadow = self.canvas.item(0, 50.0)
        self._ground_quad(shadow, xc - w / 2 - 0.1, xc + w / 2 + 0.1, z - 0.2, z + L, ROAD if abs(xc) < 20 else SIDEWALK,
                          "asphalt", self.tone_road, shade=0.45)
        if kind == "truck":
            cab_L = 2.2
            parts = [("cab", z + L, cab_L), ("box", z, L)] if not oncoming else [("box", z + cab_L, L), ("cab", z, cab_L)]
            # draw the farther part first
            for pk, pz, pl in sorted(parts, key=lambda t: -t[1]):
                sub = self.canvas.item(3, pz)
                self._prism(sub, pk, xc - w / 2, xc + w / 2, pz, pl, hs, label, "truck_paint", tone, oncoming)
            return
        self._prism(it, prof, xc - w / 2, xc + w / 2, z, L, hs, label, self.paint_paths[kind], tone, oncoming)

    def _traffic(self) -> None:
        r, lay = self.rng, self.lay
        lanes = [(self.x_center + (k + 0.5) * self.lane_w, False) for k in range(self.n_right)]
        lanes += [(self.x_center - (k + 0.5) * self.lane_w, True) for k in range(self.n_left)]
        for xc, oncoming in lanes:
            z = r.uniform(4.5, 20) if abs(xc) > 2.0 else r.uniform(7, 25)
            gap = lay.car_gap * r.uniform(0.5, 1.8)
            while z < 120:
                xj = xc + r.uniform(-0.3, 0.3)
                u = r.random()
                if u < 0.06:
                    self._vehicle("truck", xj, z, oncoming)
                    z += 9
                elif u < 0.11:
                    self._vehicle("bus", xj, z, oncoming)
                    z += 13
                elif u < 0.15:
                    self._two_wheeler(xj, z, np.pi / 2 + r.uniform(-0.25, 0.25) + (np.pi if oncoming else 0),
                                      motor=True, with_rider=True)
                    z += 2
                elif u < 0.19:
                    self._two_wheeler(xj + r.uniform(0.5, 1.2) * (1 if not oncoming else -1), z,
                                      np.pi / 2 + r.uniform(-0.2, 0.2) + (np.pi if oncoming else 0), motor=False,
                                      with_rider=True)
                    z += 2
                else:
                    self._vehicle("car", xj, z, oncoming)
                    z += 5
                z += r.exponential(gap)
        # cyclists crossing or riding near the curb
        for _ in range(int(r.poisson(0.35))):
            side = 1 if r.random() < 0.7 else -1
            x = self.sides[side]["edge"] - side * r.uniform(0.5, 1.2)
            self._two_wheeler(x, r.uniform(5, 40), np.pi / 2 + r.uniform(-0.5, 0.5), motor=r.random() < 0.3,
                              with_rider=True)
        # pedestrians crossing the road
        for a, b in getattr(self, "crossings", [])[:2]:
            for _ in range(int(r.poisson(1.2))):
                self._person(self.canvas.item(3, a - 2.5), r.uniform(self.road_l, self.road_r), a - r.uniform(1.5, 3.5))

    def _tram(self) -> None:
        r = self.rng
        xc = self.x_center + (r.uniform(-0.5, 0.5) * self.lane_w if self.n_left else 0.5 * self.lane_w)
        z = r.uniform(8, 45)
        L = r.uniform(20, 32)
        it = self.canvas.item(3, z)
        oncoming = r.random() < 0.4
        g = self.canvas.item(0, 40.0)
        rails = [self.cam.project(_clip_z(quad_y(0.0, xc + dx - 0.04, xc + dx + 0.04, NEAR, 200))) for dx in (-0.72, 0.72)]
        g.poly(rails, ROAD, "rail", self._tone(), N_UP, 1.0, 5.0, KIND_GROUND)
        self._prism(it, "tram", xc - 1.3, xc + 1.3, z, L, 1.0, TRAIN, "train_paint", self._tone(), oncoming)
        # pantograph
        top = self.cam.project(np.array([[xc - 0.6, 3.4, z + 4], [xc, 4.3, z + 4], [xc + 0.6, 3.4, z + 4]]))
        it.line(top, 1.5, TRAIN, "metal", 0, N_BACK, 1.0, z + 4)

    # -- private (target-only) classes --------------------------------------------------------------
    def _private_objects(self) -> None:
        r = self.rng
        for _ in range(int(r.integers(1, 3))):
            if r.random() < 0.5:
                self._animal()
            else:
                self._tuktuk()

    def _animal(self) -> None:
        r, cam = self.rng, self.cam
        big = r.random() < 0.45  # cow-like vs dog-like
        L, H = (r.uniform(1.8, 2.3), r.uniform(1.2, 1.5)) if big else (r.uniform(0.6, 1.0), r.uniform(0.45, 0.75))
        side = 1 if r.random() < 0.5 else -1
        on_road = r.random() < 0.5
        x = (r.uniform(self.road_l + 1, self.road_r - 1) if on_road else
             side * (abs(self.sides[side]["edge"]) + self.sides[side]["strip"] + r.uniform(0.5, self.sides[side]["sw"])))
        z = r.uniform(4, 22)
        if not self.visible(z, 0.2):
            return
        it = self.canvas.item(3, z)
        B = self._box
        fur, fur2 = self._tone(), self._tone()
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
        self._parts(it, base, z, r.uniform(0, 2 * np.pi), parts)

    def _tuktuk(self) -> None:
        r, cam = self.rng, self.cam
        lanes = [self.x_center + (k + 0.5) * self.lane_w for k in range(self.n_right)]
        x = float(r.choice(lanes)) + r.uniform(-0.6, 0.6)
        z = r.uniform(5, 35)
        if not self.visible(z, 0.3):
            return
        it = self.canvas.item(3, z)
        B = self._box
        paint, canopy = self._tone(), self._tone()
        P = PRIVATE_TUKTUK
        parts = [
            ("hull", B(-1.2, 1.0, -0.65, 0.65, 0.3, 1.0), 0, "tuktuk_paint", paint, P),
            ("hull", B(-1.25, 0.95, -0.7, 0.7, 1.6, 1.8), 0, "tuktuk_paint", canopy, P),
            ("hull", B(-1.2, -1.1, -0.65, 0.65, 1.0, 1.6), 0, "interior", 20, P),
            ("hull", B(0.85, 0.95, -0.55, 0.55, 1.0, 1.6), 0, "glass", 60, P),
            ("hull", B(0.9, 1.5, -0.3, 0.3, 0.3, 0.95), 0, "tuktuk_paint", paint, P),
        ]
        for u, w in ((-0.9, -0.62), (-0.9, 0.62)):
            parts.append(("fill", self._circle_uv(u, w, 0.22, 0.22), 0, "tyre", 10, P))
        parts.append(("fill", self._circle_uv(1.3, 0.0, 0.22, 0.22), 0, "tyre", 10, P))
        for u in (-1.18, 0.9):
            for w in (-0.66, 0.66):
                parts.append(("line", np.array([[u, w, 1.0], [u, w, 1.6]]), 0, "metal", 0, P))
        base = cam.project(np.array([x, 0.0, z]))
        self._parts(it, base, z, np.pi / 2 + r.uniform(-0.5, 0.5), parts)

    def _ego_hood(self) -> None:
        cam, r = self.cam, self.rng
        W, H = cam.width, cam.height
        top = H * r.uniform(0.84, 0.92)
        xs = np.linspace(0, W, 24)
        bulge = (1 - ((xs - W / 2) / (W / 2)) ** 2)
        ys = top + (1 - bulge) * H * 0.06
        pts = np.concatenate([np.stack([xs, ys], -1), np.array([[W, H + 2], [0, H + 2]])])
        it = self.canvas.item(9, 0.0)
        it.poly(pts, EGO_VEHICLE, "ego_hood", self._tone(), (0.0, 1.0, -0.3), 1.0, 1.0)


def build_scene(domain: str, rng: np.random.Generator, width: int, height: int) -> Tuple[Camera, np.ndarray,
                                                                                         Dict[str, np.ndarray]]:
    """Sample and rasterise one scene: returns (camera, int32 record-index buffer, record tables)."""
    if domain not in LAYOUTS:
        raise ValueError(f"unknown SynthCity domain '{domain}'; valid: {sorted(LAYOUTS)}")
    builder = SceneBuilder(domain, rng, width, height)
    canvas = builder.build()
    return builder.cam, canvas.rasterize(), canvas.records.arrays()
