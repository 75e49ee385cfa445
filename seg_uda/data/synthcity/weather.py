"""SynthCity weather and lighting of the "real" style: the weather draw, per-record sun / overcast / dusk / night
lighting, the sky, fog and rain haze, night emission with glow, and rain streaks."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .camera import Camera
from .ids import M
from .surface import lambert, unit
from .textures import T, material_tables

#: weathers of the real domain and their probabilities (overcast dominates, as in Cityscapes)
WEATHERS = ("overcast", "sunny", "fog", "rain", "night", "dusk")
WEATHER_P = (0.42, 0.2, 0.12, 0.1, 0.1, 0.06)


def sample_weather(rng: np.random.Generator) -> str:
    """One of :data:`WEATHERS`."""
    return str(rng.choice(list(WEATHERS), p=list(WEATHER_P)))


def record_lighting(rec: Dict[str, np.ndarray], weather: str,
                    rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-record shading (sun direction by weather, random exposure), the light tint and the night dimming."""
    if weather == "sunny":
        light = unit([rng.uniform(-1, 1), rng.uniform(0.5, 1.2), rng.uniform(-0.5, 0.6)])
        shade = lambert(rec, light, 0.55, 0.7)
        tint = np.array([1.06, 1.0, 0.92])
    elif weather == "dusk":
        light = unit([rng.choice([-1, 1]), 0.25, rng.uniform(0, 1)])
        shade = lambert(rec, light, 0.45, 0.5)
        tint = np.array([1.15, 0.88, 0.72])
    else:
        light = unit([rng.uniform(-0.3, 0.3), 1.0, rng.uniform(-0.3, 0.3)])
        shade = lambert(rec, light, 0.75, 0.3)
        tint = np.array([1.0, 1.0, 1.02])
    shade = shade * np.float32(rng.uniform(0.85, 1.1))
    night = np.array([0.16, 0.17, 0.24]) * rng.uniform(0.8, 1.3) if weather == "night" else np.ones(3)
    return shade, tint, night


def sky_colours(cam: Camera, sky: np.ndarray, weather: str, rng: np.random.Generator,
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


def apply_haze(fac: np.ndarray, depth: np.ndarray, sky: np.ndarray, weather: str,
               rng: np.random.Generator) -> Optional[np.ndarray]:
    """Fog / rain: attenuate the brightness factor ``fac`` in place by the transmission over ``depth`` and return
    the additive grey light per pixel (None in other weathers)."""
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
    return add


def night_lights(img: np.ndarray, buf: np.ndarray, rec: Dict[str, np.ndarray], mat: np.ndarray,
                 cam_mat: np.ndarray) -> np.ndarray:
    """Night: switched-on lamps, lit windows and car lights emit light (headlights white) and glow."""
    W = buf.shape[1]
    tone = rec["tone"][buf]
    is_car_light = mat == M["car_light"]
    em = material_tables()["emissive"][mat] * ((tone >= 200) | is_car_light)[..., None]
    head = is_car_light & (tone >= 200)
    em[head] = np.array([1.0, 0.97, 0.88], np.float32)
    em = em @ cam_mat.T
    img = np.maximum(img, em * 0.9)
    sig = max(W / 120.0, 1.0)
    img += cv2.GaussianBlur(em, (0, 0), sig) * 2.0 + cv2.GaussianBlur(em, (0, 0), sig * 4) * 3.0
    return img


def rain_streaks(img: np.ndarray, rng: np.random.Generator) -> None:
    """Add slanted, slightly blurred rain streaks to the float RGB ``img`` in place."""
    H, W = img.shape[:2]
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
