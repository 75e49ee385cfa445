"""Builders of tiny dataset trees in each real on-disk layout (GTA5, SYNTHIA, Cityscapes, IDD, folder) for tests."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

W, H = 16, 8  # tiny frames: 16 wide, 8 high


def rgb_image(seed: int, w: int = W, h: int = H) -> np.ndarray:
    """Deterministic random HxWx3 uint8 RGB image."""
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def write_rgb(path: Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image (PNG or JPEG by extension) with OpenCV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def write_gray(path: Path, ids: np.ndarray) -> None:
    """Write a single-channel 8-bit label PNG (PIL mode 'L')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint8), mode="L").save(path)


def write_palette(path: Path, ids: np.ndarray) -> None:
    """Write a palette ('P') PNG of ids with a colour palette, like the real GTA5 labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.astype(np.uint8).tobytes())
    img.putpalette([(i * 37) % 256 for i in range(256 * 3)])
    img.save(path)


def write_synthia_label(path: Path, class_ids: np.ndarray, instance_ids: Optional[np.ndarray] = None) -> None:
    """Write a SYNTHIA GT/LABELS PNG: 16-bit, 3 channels, class id in R, instance id in G."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.zeros(class_ids.shape + (3,), dtype=np.uint16)
    rgb[..., 0] = class_ids
    rgb[..., 1] = 0 if instance_ids is None else instance_ids
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())  # OpenCV writes BGR


def pattern(values: Sequence[int], w: int = W, h: int = H) -> np.ndarray:
    """An HxW id map cycling through ``values`` column by column (every value appears)."""
    cols = np.array([values[i % len(values)] for i in range(w)])
    return np.tile(cols, (h, 1)).astype(np.int64)


def make_gta5(root: Path, labels: Dict[str, np.ndarray]) -> Path:
    """ROOT/images/NAME.png + ROOT/labels/NAME.png (palette PNG of Cityscapes label ids)."""
    for i, (name, ids) in enumerate(labels.items()):
        write_rgb(root / "images" / f"{name}.png", rgb_image(i, ids.shape[1], ids.shape[0]))
        write_palette(root / "labels" / f"{name}.png", ids)
    return root


def make_synthia(root: Path, labels: Dict[str, np.ndarray]) -> Path:
    """ROOT/RGB/NAME.png + ROOT/GT/LABELS/NAME.png (16-bit, class id in R, instance ids in G)."""
    for i, (name, ids) in enumerate(labels.items()):
        write_rgb(root / "RGB" / f"{name}.png", rgb_image(i, ids.shape[1], ids.shape[0]))
        instances = np.full(ids.shape, 1000 + i, dtype=np.uint16)  # G channel must be ignored
        write_synthia_label(root / "GT" / "LABELS" / f"{name}.png", ids, instances)
    return root


def make_cityscapes(
    root: Path,
    split: str,
    labels: Dict[str, np.ndarray],
    private: Optional[Dict[str, np.ndarray]] = None,
    label_suffix: str = "_gtFine_labelIds.png",
    image_ext: str = ".png",
) -> Path:
    """leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png + gtFine/<split>/<city>/<stem><label_suffix>.

    ``labels`` keys are '<city>/<stem>'; ``private`` (same keys) writes *_gtFine_privateIds.png.
    """
    for i, (name, ids) in enumerate(labels.items()):
        write_rgb(root / "leftImg8bit" / split / f"{name}_leftImg8bit{image_ext}",
                  rgb_image(i, ids.shape[1], ids.shape[0]))
        write_gray(root / "gtFine" / split / f"{name}{label_suffix}", ids)
        if private is not None and name in private:
            write_gray(root / "gtFine" / split / f"{name}_gtFine_privateIds.png", private[name])
    return root


def make_idd(root: Path, split: str, labels: Dict[str, np.ndarray], label_type: str = "level3Ids",
             image_ext: str = ".png") -> Path:
    """IDD layout: leftImg8bit/<split>/<seq>/<name>_leftImg8bit.png + gtFine/.../<name>_gtFine_labellevel3Ids.png."""
    suffix = {"level3Ids": "_gtFine_labellevel3Ids.png", "ids": "_gtFine_labelids.png"}[label_type]
    return make_cityscapes(root, split, labels, label_suffix=suffix, image_ext=image_ext)


def make_folder(root: Path, labels: Dict[str, np.ndarray], split: Optional[str] = None) -> Path:
    """ROOT/images[/split]/NAME.png + ROOT/labels[/split]/NAME.png (class indices, 255 ignore)."""
    sub = Path(split) if split else Path()
    for i, (name, ids) in enumerate(labels.items()):
        write_rgb(root / "images" / sub / f"{name}.png", rgb_image(i, ids.shape[1], ids.shape[0]))
        write_gray(root / "labels" / sub / f"{name}.png", ids)
    return root


def three(values: Sequence[int], names: Sequence[str]) -> Dict[str, np.ndarray]:
    """The same id pattern for each of ``names``."""
    return {n: pattern(values) for n in names}
