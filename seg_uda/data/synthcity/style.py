"""SynthCity domain appearance: turns a rasterised scene (record-index buffer) into an RGB image.

"game" looks like a rendering: flat-shaded saturated colours, crisp edges, clear blue sky.
"real" looks like a camera photo: textures cut from real photographs bundled with scikit-image, muted
class colours, white balance / exposure changes, weather (overcast, sun, fog, rain, night), blur, sensor
noise, vignetting and JPEG artefacts. Geometry is shared, so the shift is in appearance and camera.

This module holds the two renderers (thin orchestrators over ``palettes``, ``textures``, ``surface``,
``weather`` and ``sensor``, in the fixed order of random draws) and the ``STYLES`` registry; the other names
are re-exported so ``synthcity.style`` keeps its public API.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ...registry import Registry
from .camera import Camera
from .ids import KIND_GROUND
from .palettes import Palette, luts
from .sensor import colour_matrices, develop, noise_bank, vignette
from .surface import lambert, pixel_geometry, unit
from .textures import N_LEVELS, T, TEX_NAMES, material_tables, overlay_photos, surface_detail, texture_bank
from .weather import apply_haze, night_lights, rain_streaks, record_lighting, sample_weather, sky_colours

__all__ = ["T", "N_LEVELS", "Palette", "luts", "texture_bank", "pixel_geometry", "render_game", "render_real",
           "STYLES", "warm_up"]


def render_game(cam: Camera, buf: np.ndarray, rec: Dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Flat-shaded, saturated, noise-free rendering (like a video game frame).

    Every record gets one colour (palette x per-face Lambert shading x distance haze), so the frame is a
    single uint8 gather plus a sky gradient: crisp edges and no texture, as in a simple rasteriser.
    """
    H, W = buf.shape
    col = luts()["game"][rec["material"], rec["tone"]]  # per record colour
    light = unit([rng.uniform(-1, 1), rng.uniform(0.6, 1.4), rng.uniform(-0.9, 0.1)])
    col = col * lambert(rec, light, ambient=0.55, diffuse=0.5)[:, None]
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


def render_real(cam: Camera, buf: np.ndarray, rec: Dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Photo-like rendering: real textures, muted colours, weather, lighting and camera artefacts.

    All colour operations that are linear per channel (lighting tint, white balance, exposure, saturation)
    are folded into one 3x3 matrix applied to per-record colours; per-pixel work is scalar where possible.
    """
    H, W = buf.shape
    geo = pixel_geometry(cam, buf, rec)
    mat = rec["material"][buf]
    weather = sample_weather(rng)
    shade, tint, night = record_lighting(rec, weather, rng)
    cam_mat, scene_mat = colour_matrices(rng, tint, night)

    col = luts()["real"][rec["material"], rec["tone"]] * shade[:, None]
    col = col @ scene_mat.T
    img = col[buf]
    overlay_photos(img, buf, mat, shade, scene_mat, weather, rng)  # shop windows, reflections in glass
    sky = buf == 0
    if sky.any():
        smooth = texture_bank()[0][TEX_NAMES.index("smooth"), 0]
        img[sky] = sky_colours(cam, sky, weather, rng, smooth) @ cam_mat.T

    # per-pixel scalar factor: texture detail * dirt * fog / rain transmission * vignetting
    fac = surface_detail(cam, buf, mat, geo, len(rec["label"]), rng)
    vig = vignette(rng, H, W)
    add = apply_haze(fac, geo["depth"], sky, weather, rng)  # additive grey light (fog / rain haze), per pixel
    fac *= vig
    img *= fac[..., None]
    if add is not None:
        img += (add * vig)[..., None] * cam_mat.sum(axis=1)  # grey light seen through the camera pipeline

    if weather == "night":
        img = night_lights(img, buf, rec, mat, cam_mat)
    elif weather == "rain":
        rain_streaks(img, rng)
    return develop(img, weather, rng)


#: domain name -> renderer (cam, index buffer, records, rng) -> RGB uint8
STYLES = Registry("synthcity style")
STYLES.register("game")(render_game)
STYLES.register("real")(render_real)


def warm_up() -> None:
    """Build the cached colour tables, textures and noise (call before forking workers so they share them)."""
    luts()
    texture_bank()
    material_tables()
    noise_bank()
