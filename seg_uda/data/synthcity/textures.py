"""SynthCity real-domain textures: grey detail tiles (scikit-image photographs and fixed-seed noise, with blur
levels), colour photos for shop windows and glass, the per-material texture tables, and the per-pixel texture
detail and photo overlays of the "real" style."""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .camera import Camera
from .ids import M, MATERIALS

T = 256  # texture tile size (power of two); tiles are mirror-repeated so they wrap seamlessly
N_LEVELS = 4  # blur "mip" levels against aliasing of far textures

#: real-domain texture of each material: (texture name, tile size in metres, contrast, photo mix)
REAL_TEX: Dict[str, Tuple[str, float, float, float]] = {
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
DIRTY = ("asphalt", "paving", "curb", "facade", "roof", "concrete", "fence", "grass", "foliage", "lane_paint")
TEX_NAMES = ("flat", "gravel", "grass", "brick", "moon", "smooth", "fine")
#: emissive materials at night (tone >= 200 means "switched on" for lamps and windows)
EMISSIVE = {"lamp_head": (255, 230, 170), "lamp_red": (255, 60, 40), "lamp_amber": (255, 170, 40),
            "lamp_green": (60, 255, 160), "glass": (255, 200, 120), "car_light": (255, 40, 30)}


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
    for name in TEX_NAMES:
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
def material_tables() -> Dict[str, np.ndarray]:
    """Per-material lookup tables of the real style: texture id, texels per metre, detail strength, photo mix,
    night emission colour and dirt strength."""
    n = len(MATERIALS)
    tex_id = np.zeros(n, np.int64)
    ppm = np.ones(n, np.float32)
    strength = np.zeros(n, np.float32)
    photo = np.zeros(n, np.float32)
    for name, (tex, tile_m, contrast, mix) in REAL_TEX.items():
        k = M[name]
        tex_id[k] = TEX_NAMES.index(tex)
        ppm[k] = T / tile_m
        strength[k] = contrast
        photo[k] = mix
    dirt = np.zeros(n, np.float32)
    for name in DIRTY:
        dirt[M[name]] = 0.14
    emissive = np.zeros((n, 3), np.float32)
    for name, col in EMISSIVE.items():
        emissive[M[name]] = np.array(col, np.float32) / 255.0
    return {"tex_id": tex_id, "ppm": ppm, "strength": strength, "photo": photo, "emissive": emissive, "dirt": dirt}



def overlay_photos(img: np.ndarray, buf: np.ndarray, mat: np.ndarray, shade: np.ndarray, scene_mat: np.ndarray,
                   weather: str, rng: np.random.Generator) -> None:
    """Blend photos into shop windows and (as reflections) into glass, in place on the float RGB ``img``."""
    photos = texture_bank()[1]
    pm = material_tables()["photo"][mat]
    sel = pm > 0
    if sel.any():
        pid = (buf[sel] * 7 + 3) % len(photos)
        ys, xs = np.nonzero(sel)
        sc = rng.uniform(0.5, 1.5)
        ph = photos[pid, (ys * sc).astype(np.int32) & (T - 1), (xs * sc).astype(np.int32) & (T - 1)]
        ph = (ph * shade[buf[sel], None]) @ scene_mat.T
        w = pm[sel, None] * np.float32(0.6 if weather != "sunny" else 0.9)
        img[sel] = img[sel] * (1 - pm[sel, None]) + ph * w


def surface_detail(cam: Camera, buf: np.ndarray, mat: np.ndarray, geo: Dict[str, np.ndarray], nrec: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Per-pixel brightness factor (H, W) of texture detail times dirt.

    Textures are sampled perspective-correctly from the surface coordinates in ``geo`` (see
    :func:`surface.pixel_geometry`) at the blur level of the pixel footprint, with a random offset per record.
    """
    bank = texture_bank()[0]
    tab = material_tables()
    depth, u, v = geo["depth"], geo["u"], geo["v"]
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
    dirt = bank[TEX_NAMES.index("smooth"), 2, (v * 12).astype(np.int32) & (T - 1), (u * 12).astype(np.int32) & (T - 1)]
    fac *= 1.0 + tab["dirt"][mat] * dirt
    return fac
