"""Joint image/label transforms: albumentations training augmentation and image-only eval resizing.

A transform is a callable ``t(image, label=None, extras=()) -> TransformOutput(image, label, extras)``:
``image`` is HxWx3 uint8 RGB, ``label`` and each of ``extras`` (e.g. the private-class map) are HxW
uint8 maps that receive exactly the same geometry as the label (nearest-neighbour, 255 fill on padding).
Outputs are a float32 [3,H,W] normalized tensor (BGR channel order for the ``caffe`` normalization) and
int64 [H,W] tensors. Datasets only rely on this
signature, so they stay independent of albumentations (imported lazily here).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image

from .labels import IGNORE_INDEX

Size = Tuple[int, int]  # (W, H)
Stats = Tuple[Tuple[float, float, float], Tuple[float, float, float]]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)  # ADVENT's IMG_MEAN (B, G, R), 0-255 scale
NORMALIZATIONS: Dict[str, Stats] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    # EfficientNet-Lite (TFLite) inputs: (pixel - 127) / 128, written in [0, 1] units.
    "lite0": ((127 / 255,) * 3, (128 / 255,) * 3),
    # ADVENT / Caffe ResNet (DeepLab_resnet_pretrained_imagenet.pth): BGR pixels on the 0-255 scale minus
    # CAFFE_MEAN_BGR, no std. Written here in RGB order and [0, 1] units; the channels are reversed afterwards.
    "caffe": (tuple(v / 255 for v in CAFFE_MEAN_BGR[::-1]), (1 / 255,) * 3),
}
"""Per-backbone input normalization as (mean, std) in [0, 1] pixel units, RGB order: out = (pixel/255 - mean) / std."""
BGR_NORMALIZATIONS = frozenset({"caffe"})
"""Named normalizations whose output channels are in BGR order (models trained in Caffe read BGR)."""


RESIZE_BACKENDS = ("cv2", "pil")
"""How images / label maps are resized to the configured size: ``cv2`` bilinear / nearest (default); ``pil``
bicubic / nearest with PIL, exactly as ADVENT's data loaders (PIL's bicubic is antialiased when shrinking)."""


def resize_array(arr: np.ndarray, size: Size, label: bool, backend: str = "cv2") -> np.ndarray:
    """Resize an HxW(x3) uint8 array to ``size`` (W, H): label maps nearest, images bilinear (cv2) / bicubic (pil)."""
    if arr.shape[1::-1] == tuple(size):
        return arr
    if backend == "pil":
        return np.asarray(Image.fromarray(arr).resize(tuple(size), Image.NEAREST if label else Image.BICUBIC))
    return cv2.resize(arr, tuple(size), interpolation=cv2.INTER_NEAREST if label else cv2.INTER_LINEAR)


def _check_backend(backend: str) -> str:
    if backend not in RESIZE_BACKENDS:
        raise ValueError(f"unknown resize backend {backend!r}; valid: {', '.join(RESIZE_BACKENDS)}")
    return backend


def normalization(name: str) -> Stats:
    """(mean, std) of a named normalization ('imagenet', 'lite0', 'caffe'), RGB order; see `BGR_NORMALIZATIONS`."""
    try:
        return NORMALIZATIONS[name]
    except KeyError:
        raise KeyError(f"unknown normalization '{name}'; valid: {', '.join(sorted(NORMALIZATIONS))}") from None


def tensor_normalization(name: str) -> Tuple[List[float], List[float]]:
    """(mean, std) of a named normalization in the channel order of the normalized tensors (BGR for 'caffe'),
    [0, 1] units: ``tensor * std + mean`` gives back the pixels, for methods that augment raw pixels."""
    mean, std = normalization(name)
    order = slice(None, None, -1) if name in BGR_NORMALIZATIONS else slice(None)
    return list(mean[order]), list(std[order])


class TransformOutput(NamedTuple):
    """Result of a transform: normalized image, int64 label (or None) and transformed extra maps."""

    image: torch.Tensor
    label: Optional[torch.Tensor]
    extras: List[torch.Tensor]


def _resolve_stats(
    mean: Optional[Sequence[float]], std: Optional[Sequence[float]], normalize: str
) -> Tuple[np.ndarray, np.ndarray, bool]:
    """(mean, std, bgr) as float64 arrays: explicit ``mean``/``std`` (RGB output), else the named ``normalize``."""
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither (then `normalize` picks them)")
    bgr = mean is None and normalize in BGR_NORMALIZATIONS
    if mean is None:
        mean, std = normalization(normalize)
    m = np.asarray(mean, dtype=np.float64).reshape(-1)
    s = np.asarray(std, dtype=np.float64).reshape(-1)
    if m.shape != (3,) or s.shape != (3,):
        raise ValueError(f"mean and std need 3 values each, got {tuple(m)} and {tuple(s)}")
    if (s <= 0).any():
        raise ValueError(f"std values must be positive, got {tuple(s)}")
    return m, s, bgr


def _check_size(size: Optional[Sequence[int]], what: str) -> Optional[Size]:
    if size is None:
        return None
    vals = tuple(size)
    if len(vals) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in vals):
        raise ValueError(f"{what} must be (width, height) with two positive ints, got {size!r}")
    return int(vals[0]), int(vals[1])


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"transform expects an HxWx3 uint8 RGB image, got {got}")


class _Normalize:
    """uint8 HxWx3 RGB -> float32 [3,H,W] tensor with (x/255 - mean)/std, channels reversed when ``bgr``.

    RGB: float32 arithmetic (unchanged, bit for bit). BGR (caffe): scale and shift from float64, i.e. exactly
    ADVENT's ``float32(pixel) - float32(IMG_MEAN)``.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, bgr: bool = False) -> None:
        self.bgr = bool(bgr)
        if not self.bgr:
            mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.mean = mean
        self.std = std
        self.scale = (1.0 / (255.0 * std)).astype(np.float32)
        self.shift = (mean / std).astype(np.float32)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        out = image.astype(np.float32) * self.scale - self.shift
        chw = out.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(chw[::-1] if self.bgr else chw))


def denormalize(image: torch.Tensor, normalize: str) -> np.ndarray:
    """Undo the named normalization of a [3,H,W] tensor -> HxWx3 uint8 RGB (for display)."""
    mean, std = (torch.tensor(v, dtype=torch.float64).view(3, 1, 1) for v in normalization(normalize))
    x = image.detach().cpu().double()
    if normalize in BGR_NORMALIZATIONS:
        x = x.flip(0)
    rgb = ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    return rgb.permute(1, 2, 0).numpy()


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))


class EvalTransform:
    """Optional resize of the **image only** (labels stay at ground-truth resolution unless asked) + normalize."""

    def __init__(
        self,
        size: Optional[Size],
        mean: np.ndarray,
        std: np.ndarray,
        resize_label: bool = False,
        bgr: bool = False,
        resize_backend: str = "cv2",
    ) -> None:
        self.size = size
        self.resize_label = resize_label
        self.backend = _check_backend(resize_backend)
        self.normalize = _Normalize(mean, std, bgr)

    def __call__(
        self, image: np.ndarray, label: Optional[np.ndarray] = None, extras: Sequence[np.ndarray] = ()
    ) -> TransformOutput:
        _check_image(image)
        if self.size is not None:
            image = resize_array(image, self.size, label=False, backend=self.backend)
        maps = [] if label is None else [label]
        maps += list(extras)
        if self.resize_label and self.size is not None:
            maps = [resize_array(m, self.size, label=True, backend=self.backend) for m in maps]
        tensors = [_mask_tensor(m) for m in maps]
        lab = tensors.pop(0) if label is not None else None
        return TransformOutput(self.normalize(image), lab, tensors)

    def __repr__(self) -> str:
        return (f"EvalTransform(size={self.size}, resize_label={self.resize_label}, "
                f"mean={tuple(round(float(v), 4) for v in self.normalize.mean)})")


class TrainTransform:
    """Albumentations pipeline (resize, random scale + pad/crop, h-flip, colour jitter) + normalize.

    Each DataLoader worker reseeds the pipeline from its torch worker seed on first use, so workers
    don't repeat each other's augmentations (albumentations keeps its own RNG inside ``Compose``).
    ``pil_resize``: resize to this (W, H) with PIL (bicubic / nearest) before the pipeline (``resize_backend=pil``).
    """

    def __init__(self, compose: Any, mean: np.ndarray, std: np.ndarray, seed: Optional[int] = None,
                 bgr: bool = False, pil_resize: Optional[Size] = None) -> None:
        self.compose = compose
        self.pil_resize = pil_resize
        self.normalize = _Normalize(mean, std, bgr)
        self.seed = seed
        self._seeded_pid: Optional[int] = None

    def set_random_seed(self, seed: int) -> None:
        """Seed the augmentation RNG (in this process this also disables the automatic per-worker reseed)."""
        self.compose.set_random_seed(int(seed) % 2**32)
        self._seeded_pid = os.getpid()

    def _reseed_in_worker(self) -> None:
        info = torch.utils.data.get_worker_info()
        if info is None or self._seeded_pid == os.getpid():
            return
        self.compose.set_random_seed((int(info.seed) + (self.seed or 0)) % 2**32)
        self._seeded_pid = os.getpid()

    def __call__(
        self, image: np.ndarray, label: Optional[np.ndarray] = None, extras: Sequence[np.ndarray] = ()
    ) -> TransformOutput:
        _check_image(image)
        self._reseed_in_worker()
        maps = ([] if label is None else [label]) + list(extras)
        for m in maps:
            if m.shape[:2] != image.shape[:2]:
                raise ValueError(f"mask of shape {m.shape[:2]} does not match image of shape {image.shape[:2]}")
        if self.pil_resize is not None:
            image = resize_array(image, self.pil_resize, label=False, backend="pil")
            maps = [resize_array(m, self.pil_resize, label=True, backend="pil") for m in maps]
        if maps:
            res = self.compose(image=image, masks=maps)
            out_maps = list(res["masks"])
        else:
            res = self.compose(image=image)
            out_maps = []
        tensors = [_mask_tensor(m) for m in out_maps]
        lab = tensors.pop(0) if label is not None else None
        return TransformOutput(self.normalize(res["image"]), lab, tensors)

    def __repr__(self) -> str:
        names = ", ".join(["PILResize"] * (self.pil_resize is not None)
                          + [type(t).__name__ for t in self.compose.transforms])
        return f"TrainTransform([{names}], mean={tuple(round(float(v), 4) for v in self.normalize.mean)})"


def _albumentations() -> Any:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network version check
    import albumentations as A

    return A


def build_train_transform(
    size: Optional[Sequence[int]] = None,
    crop_size: Optional[Sequence[int]] = None,
    scale_range: Optional[Tuple[float, float]] = (0.5, 1.5),
    hflip: bool = True,
    color_jitter: Union[float, Tuple[float, float, float, float], None] = (0.25, 0.25, 0.25, 0.0),
    color_jitter_p: float = 0.5,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    normalize: str = "imagenet",
    seed: Optional[int] = None,
    resize_backend: str = "cv2",
) -> TrainTransform:
    """Training augmentation: resize to ``size`` (W,H), random rescale by ``scale_range`` then pad (0 / label 255)
    and random-crop to ``crop_size`` (default: ``size``), horizontal flip, colour jitter (a strength s for
    brightness/contrast/saturation, or a (brightness, contrast, saturation, hue) tuple, applied with probability
    ``color_jitter_p``; 0/None disables), normalization (``mean``/``std`` or named ``normalize``).
    ``resize_backend``: see `RESIZE_BACKENDS` (the random rescale always uses cv2)."""
    A = _albumentations()
    _check_backend(resize_backend)
    size_ = _check_size(size, "size")
    crop_ = _check_size(crop_size, "crop_size") or size_
    m, s, bgr = _resolve_stats(mean, std, normalize)
    ops: List[Any] = []
    if size_ is not None and resize_backend == "cv2":
        ops.append(A.Resize(height=size_[1], width=size_[0], interpolation=cv2.INTER_LINEAR,
                            mask_interpolation=cv2.INTER_NEAREST))
    if scale_range is not None:
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range!r}")
        if crop_ is None:
            raise ValueError("scale_range needs a crop target: give size or crop_size")
        ops.append(
            A.RandomScale(scale_limit=(lo - 1.0, hi - 1.0), interpolation=cv2.INTER_LINEAR,
                          mask_interpolation=cv2.INTER_NEAREST, p=1.0)
        )
    if crop_ is not None and (scale_range is not None or crop_ != size_):
        cw, ch = crop_
        ops.append(A.PadIfNeeded(min_height=ch, min_width=cw, position="top_left", border_mode=cv2.BORDER_CONSTANT,
                                 fill=0, fill_mask=IGNORE_INDEX))
        ops.append(A.RandomCrop(height=ch, width=cw))
    if hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    jitter = _jitter_strengths(color_jitter)
    if jitter is not None:
        b, c, sat, h = jitter
        ops.append(
            A.ColorJitter(
                brightness=(max(0.0, 1 - b), 1 + b),
                contrast=(max(0.0, 1 - c), 1 + c),
                saturation=(max(0.0, 1 - sat), 1 + sat),
                hue=(-h, h),
                p=color_jitter_p,
            )
        )
    compose = A.Compose(ops, seed=seed)
    pil_size = size_ if resize_backend == "pil" else None
    return TrainTransform(compose, m, s, seed=seed, bgr=bgr, pil_resize=pil_size)


def _jitter_strengths(color_jitter: Union[float, Sequence[float], None]) -> Optional[Tuple[float, float, float, float]]:
    """None/0 -> no jitter; a float s -> (s, s, s, 0); else a 4-tuple (brightness, contrast, saturation, hue)."""
    if color_jitter is None:
        return None
    if isinstance(color_jitter, (int, float)):
        vals: Tuple[float, ...] = (float(color_jitter),) * 3 + (0.0,)
    else:
        vals = tuple(float(v) for v in color_jitter)
    if len(vals) != 4 or any(v < 0 for v in vals) or vals[3] > 0.5:
        raise ValueError(
            "color_jitter must be a strength >= 0 or (brightness, contrast, saturation, hue) >= 0 with "
            f"hue <= 0.5, got {color_jitter!r}"
        )
    if not any(vals):
        return None
    return vals[0], vals[1], vals[2], vals[3]


def build_eval_transform(
    size: Optional[Sequence[int]] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    normalize: str = "imagenet",
    resize_label: bool = False,
    resize_backend: str = "cv2",
) -> EvalTransform:
    """Evaluation transform: resize the image to ``size`` (W,H) if given, keep labels at full resolution
    (``resize_label=True`` resizes them with nearest neighbour), then normalize."""
    m, s, bgr = _resolve_stats(mean, std, normalize)
    return EvalTransform(_check_size(size, "size"), m, s, resize_label=resize_label, bgr=bgr,
                         resize_backend=resize_backend)

