"""SynthCity preview grid: frames of both domains next to their Cityscapes-palette label maps."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

#: colours for private (open-set) classes in previews (they are id 0 / black in the Cityscapes palette)
PRIVATE_COLORS = {1: (255, 0, 255), 2: (0, 255, 255)}


def cityscapes_palette() -> np.ndarray:
    """(256, 3) uint8 colour of each Cityscapes label id (cityscapesscripts ``labels`` colours)."""
    from cityscapesscripts.helpers.labels import labels

    pal = np.zeros((256, 3), np.uint8)
    for lb in labels:
        if 0 <= lb.id < 256:
            pal[lb.id] = lb.color
    return pal


def colorize(label_ids: np.ndarray, private: Optional[np.ndarray] = None) -> np.ndarray:
    """RGB visualisation of a label-id map; private pixels (if given) are magenta (animal) / cyan (tuk-tuk)."""
    rgb = cityscapes_palette()[label_ids]
    if private is not None:
        for k, c in PRIVATE_COLORS.items():
            rgb[private == k] = c
    return rgb


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image '{path}'")
    return img[..., ::-1]


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read label '{path}'")
    return img


def _fit(img: np.ndarray, h: int, nearest: bool) -> np.ndarray:
    w = int(round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def grid(rows: Sequence[Sequence[np.ndarray]], pad: int = 4) -> np.ndarray:
    """Stack rows of equally tall RGB tiles into one image with white padding."""
    lines: List[np.ndarray] = []
    width = max(sum(t.shape[1] for t in r) + pad * (len(r) + 1) for r in rows)
    for r in rows:
        h = r[0].shape[0]
        line = np.full((h + pad, width, 3), 255, np.uint8)
        x = pad
        for t in r:
            line[pad:pad + h, x:x + t.shape[1]] = t
            x += t.shape[1] + pad
        lines.append(line)
    lines.append(np.full((pad, width, 3), 255, np.uint8))
    return np.concatenate(lines, axis=0)


def write_preview(out_dir: Union[str, os.PathLike], png_path: Union[str, os.PathLike], num: int = 4,
                  tile_height: int = 150) -> Path:
    """Write a grid of ``num`` rows: [game image | game labels | real image | real labels (+private)]."""
    out = Path(out_dir)
    game = sorted((out / "game" / "images").glob("*.png"))
    real = sorted((out / "real" / "leftImg8bit").glob("*/*/*_leftImg8bit.png"))
    if not game or not real:
        raise FileNotFoundError(f"no SynthCity frames under '{out}' (expected game/images and real/leftImg8bit)")
    # prefer target frames that show private classes (largest first), so the preview documents them
    def private_pixels(p: Path) -> int:
        gt = Path(str(p).replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit.png", "_gtFine_privateIds.png"))
        return int((_read_gray(gt) > 0).sum())

    counts = {p: private_pixels(p) for p in real}
    with_private = sorted((p for p in real if counts[p] > 0), key=lambda p: (-counts[p], str(p)))
    real_pick = with_private[:max(1, num // 2)]
    real_pick += [p for p in real if p not in real_pick][:num - len(real_pick)]
    rows = []
    for k in range(num):
        row: List[np.ndarray] = []
        if k < len(game):
            g = game[k]
            row += [_fit(_read_rgb(g), tile_height, False),
                    _fit(colorize(_read_gray(out / "game" / "labels" / g.name)), tile_height, True)]
        if k < len(real_pick):
            p = real_pick[k]
            gt = Path(str(p).replace("leftImg8bit", "gtFine", 1))
            lbl = _read_gray(Path(str(gt).replace("_leftImg8bit.png", "_gtFine_labelIds.png")))
            priv = _read_gray(Path(str(gt).replace("_leftImg8bit.png", "_gtFine_privateIds.png")))
            row += [_fit(_read_rgb(p), tile_height, False), _fit(colorize(lbl, priv), tile_height, True)]
        if row:
            rows.append(row)
    img = grid(rows)
    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write preview '{path}'")
    return path


def preview_frames(frames: Sequence[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]],
                   png_path: Union[str, os.PathLike], tile_height: int = 150) -> Path:
    """Write a preview of in-memory frames [(rgb, label_ids, private or None), ...], one per row."""
    rows = [[_fit(rgb, tile_height, False), _fit(colorize(lbl, priv), tile_height, True)] for rgb, lbl, priv in frames]
    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid(rows)[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path
