"""SynthCity camera pipeline of the "real" style: white balance / exposure / desaturation matrices, vignetting,
and the optics and sensor stage (motion / lens blur, signal-dependent noise, gamma, JPEG artefacts)."""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import cv2
import numpy as np

_NOISE = 768  # side of the cached noise tile


def colour_matrices(rng: np.random.Generator, tint: np.ndarray, night: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(camera matrix, scene matrix): white balance * exposure then desaturation (camera only, also applied to
    fog / glow light), and the same after the scene's light ``tint`` and ``night`` dimming (record colours)."""
    wb = rng.uniform(0.88, 1.12, 3) * rng.uniform(0.8, 1.25)
    sat = rng.uniform(0.55, 0.95)
    desat = sat * np.eye(3) + (1 - sat) / 3.0 * np.ones((3, 3))
    cam_mat = (desat @ np.diag(wb)).astype(np.float32)  # camera only (applied to fog / glow light too)
    scene_mat = (cam_mat @ np.diag(tint * night)).astype(np.float32)
    return cam_mat, scene_mat


def vignette(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """Radial brightness fall-off (H, W) of random strength."""
    yy = (np.arange(H, dtype=np.float32)[:, None] - H / 2) / (H / 2)
    xx = (np.arange(W, dtype=np.float32)[None, :] - W / 2) / (W / 2)
    return 1.0 - np.float32(rng.uniform(0.1, 0.4)) * (xx ** 2 * 0.6 + yy ** 2 * 0.4)


def develop(img: np.ndarray, weather: str, rng: np.random.Generator) -> np.ndarray:
    """Float RGB (H, W, 3) in ~[0, 1] -> uint8 RGB through optics and sensor: (motion) blur, signal-dependent
    noise (stronger at night), gamma and a JPEG round trip."""
    H, W = img.shape[:2]
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
    img += noise_crop(rng, H, W) * noise_sd * np.sqrt(img + np.float32(0.02))
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


@lru_cache(maxsize=None)
def noise_bank() -> np.ndarray:
    """Fixed-seed Gaussian noise tile; frames take random crops (cheaper than fresh noise, equally deterministic)."""
    return np.random.default_rng(777).standard_normal((_NOISE, _NOISE, 3), dtype=np.float32)


def noise_crop(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """Random (H, W, 3) crop of the noise tile, mirrored half of the time (fresh noise if the frame is larger)."""
    bank = noise_bank()
    if H > _NOISE or W > _NOISE:
        return rng.standard_normal((H, W, 3), dtype=np.float32)
    y, x = rng.integers(0, _NOISE - H + 1), rng.integers(0, _NOISE - W + 1)
    out = bank[y:y + H, x:x + W]
    return out[:, ::-1] if rng.random() < 0.5 else out
