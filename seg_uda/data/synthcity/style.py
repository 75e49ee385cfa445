"""SynthCity domain appearance: turns a rasterised scene (record-index buffer) into an RGB image.

"game" looks like a rendering: flat-shaded saturated colours, crisp edges, clear blue sky.
"real" looks like a camera photo: textures cut from real photographs bundled with scikit-image, muted
class colours, white balance / exposure changes, weather (overcast, sun, fog, rain, night), blur, sensor
noise, vignetting and JPEG artefacts. Geometry is shared, so the shift is in appearance and camera.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from ...registry import Registry
from .scene import KIND_GROUND, KIND_XPLANE, M, MATERIALS, NEAR, Camera

T = 256  # texture tile size (power of two); tiles are mirror-repeated so they wrap seamlessly
N_LEVELS = 4  # blur "mip" levels against aliasing of far textures

Palette = Sequence[Tuple[Tuple[int, int, int], float]]

_GAME: Dict[str, Tuple[Palette, float]] = {
    "sky": ([((90, 160, 240), 1)], 0),
    "asphalt": ([((96, 94, 104), 3), ((112, 102, 118), 1), ((80, 82, 90), 1)], 8),
    "lane_paint": ([((245, 245, 245), 3), ((250, 210, 40), 1)], 4),
    "paving": ([((190, 182, 170), 2), ((205, 170, 150), 1), ((170, 176, 192), 1)], 10),
    "curb": ([((215, 215, 210), 1)], 6),
    "facade": ([((232, 180, 120), 1), ((205, 120, 100), 1), ((150, 190, 225), 1), ((240, 222, 160), 1),
                ((180, 180, 185), 1), ((225, 150, 172), 1), ((160, 205, 150), 1), ((140, 120, 190), 1)], 14),
    "glass": ([((60, 95, 150), 2), ((40, 62, 95), 1), ((120, 170, 210), 1)], 10),
    "shopfront": ([((80, 125, 165), 1), ((225, 85, 60), 1), ((60, 165, 125), 1), ((235, 200, 70), 1)], 12),
    "door": ([((125, 72, 40), 1), ((62, 62, 74), 1)], 8),
    "roof": ([((125, 82, 70), 1), ((92, 92, 96), 1)], 8),
    "concrete": ([((195, 188, 170), 1), ((172, 160, 150), 1), ((205, 205, 192), 1), ((170, 120, 110), 1)], 10),
    "fence": ([((125, 92, 58), 1), ((82, 82, 86), 1), ((50, 115, 62), 1), ((200, 200, 205), 1)], 8),
    "metal": ([((112, 118, 124), 1), ((72, 76, 82), 1), ((145, 145, 148), 1), ((60, 90, 70), 1)], 6),
    "tl_housing": ([((40, 40, 42), 2), ((60, 72, 50), 1), ((220, 190, 40), 1)], 5),
    "lamp_red": ([((255, 40, 30), 1)], 0),
    "lamp_amber": ([((255, 185, 0), 1)], 0),
    "lamp_green": ([((40, 255, 95), 1)], 0),
    "sign_face": ([((232, 30, 30), 1), ((30, 82, 222), 1), ((252, 222, 30), 1), ((242, 242, 242), 1),
                   ((30, 152, 62), 1)], 6),
    "sign_border": ([((245, 245, 245), 2), ((205, 22, 22), 1)], 4),
    "sign_back": ([((160, 160, 165), 1)], 6),
    "foliage": ([((62, 172, 52), 2), ((92, 192, 42), 1), ((42, 142, 62), 1)], 14),
    "bark": ([((112, 80, 50), 1)], 10),
    "grass": ([((125, 205, 62), 2), ((155, 212, 82), 1), ((110, 180, 70), 1)], 10),
    "soil": ([((132, 100, 70), 1)], 8),
    "car_paint": ([((222, 32, 32), 1), ((32, 72, 222), 1), ((250, 202, 22), 1), ((242, 242, 242), 1),
                   ((32, 32, 36), 1), ((42, 172, 82), 1), ((242, 122, 22), 1), ((152, 42, 162), 1),
                   ((60, 200, 220), 1)], 12),
    "tyre": ([((26, 26, 28), 1)], 4),
    "rim": ([((182, 182, 192), 1)], 6),
    "car_light": ([((222, 22, 22), 1)], 0),
    "skin": ([((242, 202, 172), 1), ((205, 152, 112), 1), ((142, 96, 62), 1), ((92, 62, 42), 1)], 8),
    "hair": ([((42, 30, 20), 2), ((92, 62, 30), 1), ((202, 172, 92), 1), ((22, 22, 22), 1)], 6),
    "cloth_top": ([((222, 42, 42), 1), ((42, 92, 222), 1), ((242, 202, 42), 1), ((42, 182, 92), 1),
                   ((242, 242, 242), 1), ((32, 32, 32), 1), ((242, 122, 32), 1), ((162, 62, 202), 1)], 12),
    "cloth_bottom": ([((42, 52, 125), 2), ((32, 32, 32), 1), ((125, 100, 80), 1), ((82, 82, 92), 1)], 10),
    "bus_paint": ([((242, 202, 32), 1), ((222, 42, 42), 1), ((42, 122, 222), 1)], 8),
    "truck_paint": ([((242, 242, 242), 1), ((222, 62, 42), 1), ((42, 92, 202), 1), ((62, 152, 62), 1)], 8),
    "train_paint": ([((242, 242, 242), 1), ((222, 52, 52), 1), ((252, 222, 42), 1)], 8),
    "bike_frame": ([((222, 32, 32), 1), ((32, 72, 222), 1), ((30, 30, 30), 1), ((242, 242, 242), 1),
                    ((42, 172, 82), 1)], 10),
    "fur": ([((140, 100, 60), 1), ((210, 200, 180), 1), ((40, 35, 30), 1)], 10),
    "tuktuk_paint": ([((42, 162, 62), 1), ((250, 212, 32), 1), ((22, 22, 22), 1)], 8),
    "interior": ([((30, 30, 36), 1)], 4),
    "ego_hood": ([((40, 40, 46), 1)], 4),
    "lamp_head": ([((232, 232, 212), 1)], 4),
    "rail": ([((142, 142, 152), 1)], 4),
}

_REAL: Dict[str, Tuple[Palette, float]] = {
    "sky": ([((205, 210, 215), 1)], 0),
    "asphalt": ([((80, 78, 82), 2), ((98, 95, 94), 1), ((64, 64, 68), 1)], 6),
    "lane_paint": ([((196, 196, 190), 3), ((190, 168, 92), 1)], 8),
    "paving": ([((142, 136, 128), 2), ((158, 146, 134), 1), ((118, 116, 114), 1), ((130, 110, 100), 1)], 8),
    "curb": ([((160, 158, 150), 1)], 8),
    "facade": ([((152, 140, 124), 2), ((172, 160, 140), 2), ((118, 110, 102), 1), ((160, 96, 76), 1),
                ((202, 196, 182), 1), ((108, 114, 120), 1)], 12),
    "glass": ([((44, 54, 60), 2), ((70, 80, 86), 1), ((30, 34, 40), 1)], 8),
    "shopfront": ([((60, 60, 62), 1), ((110, 100, 90), 1)], 10),
    "door": ([((70, 56, 46), 1), ((50, 50, 56), 1)], 8),
    "roof": ([((92, 86, 80), 1)], 8),
    "concrete": ([((150, 148, 140), 2), ((125, 120, 112), 1), ((172, 166, 156), 1), ((120, 90, 80), 1)], 8),
    "fence": ([((92, 92, 86), 1), ((112, 96, 76), 1), ((62, 72, 62), 1), ((140, 140, 140), 1)], 8),
    "metal": ([((92, 94, 96), 2), ((62, 64, 66), 1), ((122, 122, 118), 1)], 6),
    "tl_housing": ([((32, 34, 32), 2), ((52, 56, 46), 1), ((150, 130, 50), 1)], 4),
    "lamp_red": ([((200, 70, 60), 1)], 0),
    "lamp_amber": ([((205, 150, 60), 1)], 0),
    "lamp_green": ([((80, 190, 140), 1)], 0),
    "sign_face": ([((172, 42, 42), 1), ((42, 72, 152), 1), ((202, 172, 52), 1), ((202, 202, 196), 1),
                   ((52, 112, 72), 1)], 8),
    "sign_border": ([((205, 205, 200), 2), ((160, 40, 40), 1)], 8),
    "sign_back": ([((120, 122, 124), 1)], 8),
    "foliage": ([((72, 86, 46), 2), ((56, 76, 42), 2), ((92, 100, 56), 1), ((112, 106, 52), 1),
                 ((62, 70, 56), 1)], 10),
    "bark": ([((72, 62, 52), 1)], 8),
    "grass": ([((106, 116, 72), 2), ((126, 120, 82), 1), ((92, 102, 62), 1)], 8),
    "soil": ([((102, 86, 72), 1)], 8),
    "car_paint": ([((40, 40, 42), 3), ((200, 200, 200), 3), ((130, 132, 135), 3), ((60, 65, 82), 1),
                   ((120, 32, 32), 1), ((32, 52, 42), 1), ((150, 140, 120), 1)], 10),
    "tyre": ([((24, 24, 24), 1)], 4),
    "rim": ([((130, 130, 132), 1)], 8),
    "car_light": ([((150, 32, 32), 1)], 0),
    "skin": ([((210, 175, 150), 1), ((180, 135, 105), 1), ((120, 86, 62), 1), ((80, 58, 44), 1)], 8),
    "hair": ([((40, 32, 26), 2), ((80, 60, 40), 1), ((160, 140, 100), 1), ((120, 120, 120), 1)], 6),
    "cloth_top": ([((32, 32, 34), 3), ((62, 62, 72), 2), ((112, 102, 92), 1), ((152, 152, 150), 1),
                   ((42, 52, 82), 1), ((122, 42, 42), 1), ((200, 200, 196), 1)], 10),
    "cloth_bottom": ([((36, 36, 46), 3), ((52, 56, 82), 2), ((92, 86, 76), 1)], 8),
    "bus_paint": ([((200, 200, 196), 1), ((182, 62, 52), 1), ((62, 102, 152), 1), ((212, 182, 62), 1)], 8),
    "truck_paint": ([((210, 210, 206), 2), ((122, 122, 122), 1), ((172, 62, 42), 1)], 8),
    "train_paint": ([((200, 200, 196), 1), ((200, 62, 52), 1), ((212, 192, 82), 1)], 8),
    "bike_frame": ([((40, 40, 42), 2), ((120, 120, 124), 1), ((130, 40, 40), 1), ((40, 60, 110), 1)], 8),
    "fur": ([((122, 92, 62), 2), ((200, 190, 172), 1), ((42, 36, 32), 1), ((152, 142, 132), 1)], 12),
    "tuktuk_paint": ([((62, 132, 62), 2), ((202, 172, 42), 2), ((32, 32, 32), 1), ((62, 92, 142), 1)], 8),
    "interior": ([((22, 22, 24), 1)], 4),
    "ego_hood": ([((42, 44, 46), 1), ((150, 150, 152), 1), ((26, 30, 42), 1)], 4),
    "lamp_head": ([((202, 202, 192), 1)], 4),
    "rail": ([((122, 122, 126), 1)], 4),
}

#: real-domain texture of each material: (texture name, tile size in metres, contrast, photo mix)
_REAL_TEX: Dict[str, Tuple[str, float, float, float]] = {
    "asphalt": ("gravel", 2.5, 0.30, 0.0),
    "lane_paint": ("gravel", 2.5, 0.25, 0.0),
    "paving": ("brick", 2.2, 0.35, 0.0),
    "curb": ("moon", 3.0, 0.25, 0.0),
    "facade": ("brick", 3.5, 0.35, 0.0),
    "glass": ("smooth", 4.0, 0.2, 0.22),
    "shopfront": ("flat", 1.0, 0.0, 0.8),
    "door": ("fine", 1.0, 0.15, 0.0),
    "roof": ("moon", 4.0, 0.3, 0.0),
    "concrete": ("moon", 4.0, 0.35, 0.0),
    "fence": ("gravel", 1.5, 0.3, 0.0),
    "metal": ("fine", 1.0, 0.1, 0.0),
    "foliage": ("grass", 1.6, 0.55, 0.0),
    "bark": ("gravel", 1.0, 0.35, 0.0),
    "grass": ("grass", 1.2, 0.45, 0.0),
    "soil": ("gravel", 1.0, 0.4, 0.0),
    "car_paint": ("smooth", 3.0, 0.05, 0.08),
    "bus_paint": ("smooth", 4.0, 0.05, 0.0),
    "truck_paint": ("smooth", 4.0, 0.06, 0.0),
    "train_paint": ("smooth", 4.0, 0.05, 0.0),
    "cloth_top": ("fine", 0.6, 0.2, 0.0),
    "cloth_bottom": ("fine", 0.6, 0.2, 0.0),
    "fur": ("grass", 0.6, 0.3, 0.0),
    "tuktuk_paint": ("smooth", 2.0, 0.1, 0.0),
    "ego_hood": ("smooth", 2.0, 0.08, 0.15),
}
#: materials with large-scale dirt / weathering blotches in the real domain
_DIRTY = ("asphalt", "paving", "curb", "facade", "roof", "concrete", "fence", "grass", "foliage", "lane_paint")
_TEX_NAMES = ("flat", "gravel", "grass", "brick", "moon", "smooth", "fine")
#: emissive materials at night (tone >= 200 means "switched on" for lamps and windows)
_EMISSIVE = {"lamp_head": (255, 230, 170), "lamp_red": (255, 60, 40), "lamp_amber": (255, 170, 40),
             "lamp_green": (60, 255, 160), "glass": (255, 200, 120), "car_light": (255, 40, 30)}


def _build_lut(spec: Dict[str, Tuple[Palette, float]], seed: int) -> np.ndarray:
    """(n_materials, 256, 3) float32 colours in [0, 1]: tone -> palette entry (by weight) + fixed jitter."""
    lut = np.zeros((len(MATERIALS), 256, 3), np.float32)
    for name, (pal, jitter) in spec.items():
        rng = np.random.default_rng([seed, M[name]])
        cols = np.array([c for c, _ in pal], np.float32)
        w = np.array([wt for _, wt in pal], np.float64)
        cum = np.cumsum(w / w.sum())
        idx = np.minimum(np.searchsorted(cum, (np.arange(256) + 0.5) / 256.0), len(pal) - 1)
        perm = rng.permutation(256)  # decorrelate tone order from palette order
        vals = cols[idx[perm]] + rng.normal(0, jitter, (256, 1)) + rng.normal(0, jitter * 0.4, (256, 3))
        lut[M[name]] = np.clip(vals, 0, 255) / 255.0
    # lamps / lights: tone >= 200 means switched on
    for name in ("lamp_red", "lamp_amber", "lamp_green"):
        lut[M[name], :200] *= 0.25
    if "car_light" in spec:
        head = np.array([250, 246, 226], np.float32) / 255.0
        lut[M["car_light"], 200:] = head
    return lut


@lru_cache(maxsize=None)
def luts() -> Dict[str, np.ndarray]:
    return {"game": _build_lut(_GAME, 11), "real": _build_lut(_REAL, 23)}


def _normalise(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32)
    img = (img - img.mean()) / (img.std() + 1e-6)
    return np.clip(img, -2.5, 2.5)


def _mirror_tile(img: np.ndarray) -> np.ndarray:
    """Resize to T/2 and mirror into a seamless T x T tile."""
    half = cv2.resize(img, (T // 2, T // 2), interpolation=cv2.INTER_AREA)
    top = np.concatenate([half, half[:, ::-1]], axis=1)
    return np.concatenate([top, top[::-1]], axis=0)


@lru_cache(maxsize=None)
def texture_bank() -> Tuple[np.ndarray, np.ndarray]:
    """Grey detail textures (n_tex, N_LEVELS, T, T) and colour photos (n_photo, T, T, 3), built once per process.

    Details come from photographs bundled with scikit-image (gravel, grass, brick, moon); 'smooth' and
    'fine' are fixed-seed noise; photos (astronaut, coffee, rocket, cat, motorcycle) are used for shop
    windows and reflections in glass.
    """
    from skimage import data as skd

    rng = np.random.default_rng(20240611)
    tiles: List[np.ndarray] = []
    for name in _TEX_NAMES:
        if name == "flat":
            t = np.zeros((T, T), np.float32)
        elif name == "smooth":
            t = _mirror_tile(cv2.GaussianBlur(rng.standard_normal((T, T)).astype(np.float32), (0, 0), 10))
        elif name == "fine":
            t = _mirror_tile(cv2.GaussianBlur(rng.standard_normal((T, T)).astype(np.float32), (0, 0), 0.8))
        else:
            t = _mirror_tile(getattr(skd, name)().astype(np.float32))
        tiles.append(_normalise(t) if name != "flat" else t)
    bank = np.zeros((len(tiles), N_LEVELS, T, T), np.float32)
    for i, t in enumerate(tiles):
        for lvl in range(N_LEVELS):
            # mirrored tiles are symmetric at their borders, so reflection blurs them seamlessly
            bank[i, lvl] = t if lvl == 0 else cv2.GaussianBlur(t, (0, 0), 2.0 ** (lvl - 1),
                                                               borderType=cv2.BORDER_REFLECT)
    photos = []
    motorcycle = skd.stereo_motorcycle()[0]
    for img in (skd.astronaut(), skd.coffee(), skd.rocket(), skd.chelsea(), motorcycle):
        h, w = img.shape[:2]
        s = min(h, w)
        crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        photos.append(cv2.resize(crop, (T, T), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
    return bank, np.stack(photos)


@lru_cache(maxsize=None)
def _material_tables() -> Dict[str, np.ndarray]:
    n = len(MATERIALS)
    tex_id = np.zeros(n, np.int64)
    ppm = np.ones(n, np.float32)
    strength = np.zeros(n, np.float32)
    photo = np.zeros(n, np.float32)
    for name, (tex, tile_m, contrast, mix) in _REAL_TEX.items():
        k = M[name]
        tex_id[k] = _TEX_NAMES.index(tex)
        ppm[k] = T / tile_m
        strength[k] = contrast
        photo[k] = mix
    dirt = np.zeros(n, np.float32)
    for name in _DIRTY:
        dirt[M[name]] = 0.14
    emissive = np.zeros((n, 3), np.float32)
    for name, col in _EMISSIVE.items():
        emissive[M[name]] = np.array(col, np.float32) / 255.0
    return {"tex_id": tex_id, "ppm": ppm, "strength": strength, "photo": photo, "emissive": emissive, "dirt": dirt}


# ----------------------------------------------------------------------------------------------------------


def pixel_geometry(cam: Camera, buf: np.ndarray, rec: Dict[str, np.ndarray],
                   depth_only: bool = False) -> Dict[str, np.ndarray]:
    """Per-pixel depth (m) and surface coordinates (u, v in metres) from the record-index buffer."""
    H, W = buf.shape
    ys = (np.arange(H, dtype=np.float32) + 0.5)[:, None]
    xs = (np.arange(W, dtype=np.float32) + 0.5)[None, :]
    kind = rec["kind"][buf]
    depth = rec["depth"][buf].copy()
    dy = ys - np.float32(cam.cy)
    z_ground = np.where(dy > 0.5, np.float32(cam.f * cam.h) / np.maximum(dy, 0.5), np.float32(1e4))
    g = kind == KIND_GROUND
    depth[g] = np.broadcast_to(z_ground, (H, W))[g]
    xp = kind == KIND_XPLANE
    if xp.any():
        dx = np.broadcast_to(xs - np.float32(cam.cx), (H, W))[xp]
        plane = rec["plane"][buf[xp]]
        zx = np.float32(cam.f) * plane / np.where(np.abs(dx) < 0.25, np.copysign(0.25, dx), dx)
        depth[xp] = np.where(zx > 0, zx, depth[xp])
    depth = np.clip(depth, NEAR, 1e4).astype(np.float32)
    if depth_only:
        return {"depth": depth}
    inv_f = np.float32(1.0 / cam.f)
    u = (xs - np.float32(cam.cx)) * depth * inv_f
    v = np.float32(cam.h) - dy * depth * inv_f
    u = np.where(xp, depth, u)
    v = np.where(g, depth, v)
    return {"depth": depth, "u": u, "v": v, "ground": g}


def _lambert(rec: Dict[str, np.ndarray], light: np.ndarray, ambient: float, diffuse: float) -> np.ndarray:
    """Per-record shading factor from the face normal and a light direction."""
    n = rec["normal"]
    has = np.linalg.norm(n, axis=1) > 0
    nn = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-6)
    lam = np.clip(nn @ light, 0, 1)
    s = np.where(has, ambient + diffuse * lam, 1.0).astype(np.float32)
    return s * rec["shade"]


def _unit(v: Sequence[float]) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def render_game(cam: Camera, buf: np.ndarray, rec: Dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Flat-shaded, saturated, noise-free rendering (like a video game frame).

    Every record gets one colour (palette x per-face Lambert shading x distance haze), so the frame is a
    single uint8 gather plus a sky gradient: crisp edges and no texture, as in a simple rasteriser.
    """
    H, W = buf.shape
    col = luts()["game"][rec["material"], rec["tone"]]  # per record colour
    light = _unit([rng.uniform(-1, 1), rng.uniform(0.6, 1.4), rng.uniform(-0.9, 0.1)])
    col = col * _lambert(rec, light, ambient=0.55, diffuse=0.5)[:, None]
    # light atmospheric haze on distant objects (by record depth; the ground keeps its flat colour)
    haze = (1 - np.exp(-rec["depth"] / np.float32(rng.uniform(350, 700)))) * 0.5
    haze[rec["kind"] == KIND_GROUND] = 0
    haze = haze[:, None]
    col = col * (1 - haze) + haze * np.array([0.75, 0.85, 1.0], np.float32)
    col8 = np.clip(col * 255 + 0.5, 0, 255).astype(np.uint8)
    img = col8[buf]
    sky = buf == 0
    if sky.any():  # vertical gradient, saturated blue
        top = np.array([rng.uniform(40, 80), rng.uniform(110, 150), rng.uniform(220, 255)], np.float32)
        hor = np.array([rng.uniform(170, 210), rng.uniform(200, 230), 250], np.float32)
        t = np.clip(np.arange(H, dtype=np.float32) / max(cam.cy, 1.0), 0, 1)[:, None]
        rows = np.clip(top * (1 - t) + hor * t + 0.5, 0, 255).astype(np.uint8)
        img[sky] = rows[np.nonzero(sky)[0]]
    return img


def _sky_real(cam: Camera, sky: np.ndarray, weather: str, rng: np.random.Generator,
              smooth: np.ndarray) -> np.ndarray:
    """Colours (n_sky, 3) of the sky pixels: a vertical gradient with cloud texture (overcast, blue, dusk, night)."""
    ys, xs = np.nonzero(sky)
    t = np.clip(ys.astype(np.float32) / max(cam.cy, 1.0), 0, 1)[:, None]
    if weather == "night":
        top, hor = np.array([0.03, 0.04, 0.08]), np.array([0.12, 0.11, 0.14])
    elif weather == "sunny":
        top, hor = np.array([0.40, 0.58, 0.82]), np.array([0.78, 0.84, 0.90])
    elif weather == "dusk":
        top, hor = np.array([0.30, 0.34, 0.52]), np.array([0.95, 0.62, 0.40])
    else:  # overcast / fog / rain: white-grey skies as in Cityscapes
        g = rng.uniform(0.65, 0.92)
        top, hor = np.array([g, g + 0.01, g + 0.03]), np.array([g + 0.05, g + 0.06, g + 0.07])
    grad = top.astype(np.float32) * (1 - t) + hor.astype(np.float32) * t
    oy, ox = rng.integers(0, T, 2)
    sc = rng.uniform(0.4, 1.2) * 256.0 / sky.shape[1]
    cl = smooth[((ys * sc).astype(np.int32) + oy) & (T - 1), ((xs * sc).astype(np.int32) + ox) & (T - 1)][:, None]
    amp = np.float32(0.10 if weather in ("sunny", "dusk") else 0.04)
    return np.clip(grad * (1 + amp * cl) + amp * np.maximum(cl, 0), 0, 1)


def render_real(cam: Camera, buf: np.ndarray, rec: Dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Photo-like rendering: real textures, muted colours, weather, lighting and camera artefacts.

    All colour operations that are linear per channel (lighting tint, white balance, exposure, saturation)
    are folded into one 3x3 matrix applied to per-record colours; per-pixel work is scalar where possible.
    """
    H, W = buf.shape
    bank, photos = texture_bank()
    tab = _material_tables()
    geo = pixel_geometry(cam, buf, rec)
    depth, u, v = geo["depth"], geo["u"], geo["v"]
    mat = rec["material"][buf]
    nrec = len(rec["label"])
    weather = str(rng.choice(["overcast", "sunny", "fog", "rain", "night", "dusk"],
                             p=[0.42, 0.2, 0.12, 0.1, 0.1, 0.06]))

    # lighting of each record
    if weather == "sunny":
        light = _unit([rng.uniform(-1, 1), rng.uniform(0.5, 1.2), rng.uniform(-0.5, 0.6)])
        shade = _lambert(rec, light, 0.55, 0.7)
        tint = np.array([1.06, 1.0, 0.92])
    elif weather == "dusk":
        light = _unit([rng.choice([-1, 1]), 0.25, rng.uniform(0, 1)])
        shade = _lambert(rec, light, 0.45, 0.5)
        tint = np.array([1.15, 0.88, 0.72])
    else:
        light = _unit([rng.uniform(-0.3, 0.3), 1.0, rng.uniform(-0.3, 0.3)])
        shade = _lambert(rec, light, 0.75, 0.3)
        tint = np.array([1.0, 1.0, 1.02])
    shade = shade * np.float32(rng.uniform(0.85, 1.1))
    night = np.array([0.16, 0.17, 0.24]) * rng.uniform(0.8, 1.3) if weather == "night" else np.ones(3)
    # camera colour pipeline: white balance * exposure, then desaturation (one matrix)
    wb = rng.uniform(0.88, 1.12, 3) * rng.uniform(0.8, 1.25)
    sat = rng.uniform(0.55, 0.95)
    desat = sat * np.eye(3) + (1 - sat) / 3.0 * np.ones((3, 3))
    cam_mat = (desat @ np.diag(wb)).astype(np.float32)  # camera only (applied to fog / glow light too)
    scene_mat = (cam_mat @ np.diag(tint * night)).astype(np.float32)

    col = luts()["real"][rec["material"], rec["tone"]] * shade[:, None]
    col = col @ scene_mat.T
    img = col[buf]

    # photos reflected in glass and shown in shop windows
    pm = tab["photo"][mat]
    sel = pm > 0
    if sel.any():
        pid = (buf[sel] * 7 + 3) % len(photos)
        ys, xs = np.nonzero(sel)
        sc = rng.uniform(0.5, 1.5)
        ph = photos[pid, (ys * sc).astype(np.int32) & (T - 1), (xs * sc).astype(np.int32) & (T - 1)]
        ph = (ph * shade[buf[sel], None]) @ scene_mat.T
        w = pm[sel, None] * np.float32(0.6 if weather != "sunny" else 0.9)
        img[sel] = img[sel] * (1 - pm[sel, None]) + ph * w
    sky = buf == 0
    if sky.any():
        img[sky] = _sky_real(cam, sky, weather, rng, bank[_TEX_NAMES.index("smooth"), 0]) @ cam_mat.T

    # per-pixel scalar factor: texture detail (perspective-correct, blur level by footprint) * dirt * vignetting
    offs = rng.integers(0, 4 * T, (nrec, 2)).astype(np.float32)
    ppm = tab["ppm"][mat]
    footprint = ppm * depth / np.float32(cam.f)
    # the ground is seen at a grazing angle: its footprint grows with depth / camera height along v
    footprint = np.where(geo["ground"], footprint * np.sqrt(np.maximum(1.0, depth / np.float32(cam.h))), footprint)
    lvl = np.minimum(np.log2(np.maximum(footprint, 1.0)), N_LEVELS - 1).astype(np.int32)
    tu = (u * ppm + offs[buf, 0]).astype(np.int32) & (T - 1)
    tv = (v * ppm + offs[buf, 1]).astype(np.int32) & (T - 1)
    detail = bank[tab["tex_id"][mat], lvl, tv, tu]
    fac = np.clip(1.0 + tab["strength"][mat] * detail, 0.25, 2.0)
    dirt = bank[_TEX_NAMES.index("smooth"), 2, (v * 12).astype(np.int32) & (T - 1), (u * 12).astype(np.int32) & (T - 1)]
    fac *= 1.0 + tab["dirt"][mat] * dirt
    yy = (np.arange(H, dtype=np.float32)[:, None] - H / 2) / (H / 2)
    xx = (np.arange(W, dtype=np.float32)[None, :] - W / 2) / (W / 2)
    vig = 1.0 - np.float32(rng.uniform(0.1, 0.4)) * (xx ** 2 * 0.6 + yy ** 2 * 0.4)
    add = None  # additive grey light (fog / rain haze), per pixel
    if weather in ("fog", "rain"):
        vis = rng.uniform(25, 90) if weather == "fog" else rng.uniform(80, 200)
        tr = np.exp(-depth / np.float32(vis))
        if weather == "fog":
            tr[sky] = 0.03
            add = (1 - tr) * np.float32(rng.uniform(0.62, 0.85))
            fac *= tr
        else:  # rain: darker, lower contrast, grey distance haze
            tr[sky] = 0.5
            add = 0.1 * tr + 0.6 * (1 - tr)
            fac *= 0.75 * tr
    fac *= vig
    img *= fac[..., None]
    if add is not None:
        img += (add * vig)[..., None] * cam_mat.sum(axis=1)  # grey light seen through the camera pipeline

    if weather == "night":
        tone = rec["tone"][buf]
        is_car_light = mat == M["car_light"]
        em = tab["emissive"][mat] * ((tone >= 200) | is_car_light)[..., None]
        head = is_car_light & (tone >= 200)
        em[head] = np.array([1.0, 0.97, 0.88], np.float32)
        em = em @ cam_mat.T
        img = np.maximum(img, em * 0.9)
        sig = max(W / 120.0, 1.0)
        img += cv2.GaussianBlur(em, (0, 0), sig) * 2.0 + cv2.GaussianBlur(em, (0, 0), sig * 4) * 3.0
    elif weather == "rain":
        streaks = np.zeros((H, W), np.float32)
        n = int(W * H / 400)
        x0 = rng.uniform(0, W, n)
        y0 = rng.uniform(0, H, n)
        ln = rng.uniform(0.03, 0.08, n) * H
        ang = rng.uniform(-0.25, -0.1)
        pts = np.stack([x0, y0, x0 + ang * ln, y0 + ln], -1).round().astype(np.int32)
        for x_a, y_a, x_b, y_b in pts:
            cv2.line(streaks, (int(x_a), int(y_a)), (int(x_b), int(y_b)), 1.0, 1)
        img += cv2.GaussianBlur(streaks, (0, 0), 0.7)[..., None] * np.float32(0.2)

    # optics and sensor: (motion) blur, signal-dependent noise, gamma, JPEG
    gamma = rng.uniform(0.85, 1.15)
    sigma = rng.uniform(0.4, 1.1) * W / 512.0
    if rng.random() < 0.2:  # motion blur
        k = max(3, int(rng.uniform(3, 7) * W / 512) | 1)
        ker = np.zeros((k, k), np.float32)
        ker[k // 2] = 1.0 / k
        img = cv2.filter2D(img, -1, ker)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise_sd = np.float32(rng.uniform(0.008, 0.025) * (2.5 if weather == "night" else 1.0))
    np.clip(img, 0, 1, out=img)
    img += _noise_crop(rng, H, W) * noise_sd * np.sqrt(img + np.float32(0.02))
    img *= 255.0
    img += 0.5
    out = np.clip(img, 0, 255).astype(np.uint8)
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    out = cv2.LUT(out, table)
    q = int(rng.integers(30, 85))
    ok, enc = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - cv2 failure
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])


_NOISE = 768


@lru_cache(maxsize=None)
def _noise_bank() -> np.ndarray:
    """Fixed-seed Gaussian noise tile; frames take random crops (cheaper than fresh noise, equally deterministic)."""
    return np.random.default_rng(777).standard_normal((_NOISE, _NOISE, 3), dtype=np.float32)


def _noise_crop(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    bank = _noise_bank()
    if H > _NOISE or W > _NOISE:
        return rng.standard_normal((H, W, 3), dtype=np.float32)
    y, x = rng.integers(0, _NOISE - H + 1), rng.integers(0, _NOISE - W + 1)
    out = bank[y:y + H, x:x + W]
    return out[:, ::-1] if rng.random() < 0.5 else out


#: domain name -> renderer (cam, index buffer, records, rng) -> RGB uint8
STYLES = Registry("synthcity style")
STYLES.register("game")(render_game)
STYLES.register("real")(render_real)


def warm_up() -> None:
    """Build the cached colour tables, textures and noise (call before forking workers so they share them)."""
    luts()
    texture_bank()
    _material_tables()
    _noise_bank()
