"""Shared dataset machinery: file pairing, loading (cv2 images, PIL label ids), validation and errors.

Cheap checks (root, split, pairing, list-file entries) run at construction; decoding, label-id and
size checks run when a sample is loaded. Every failure is a :class:`DatasetError` naming the file.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .labels import IGNORE_INDEX, PRIVATE_MAPPING, LabelMapping, LabelMappingError

PathLike = Union[str, os.PathLike]
Transform = Callable[..., Any]
SIZE_MISMATCH_POLICIES = ("raise", "resize")
LOGGER = logging.getLogger("seg_uda.data")


class DatasetError(ValueError):
    """Bad dataset input: missing root/split/file, unpaired or corrupt file, unknown label id, size mismatch."""


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample: ``name`` is its path relative to the split dir, without suffix."""

    name: str
    image: Path
    label: Optional[Path] = None
    private: Optional[Path] = None


# ------------------------------------------------------------------------------------------------
# Path helpers
# ------------------------------------------------------------------------------------------------
def check_root(root: PathLike, dataset: str) -> Path:
    """Return ``root`` as a Path, raising if it is not an existing directory."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{dataset} root '{path}' does not exist or is not a directory")
    return path


def check_dir(path: Path, dataset: str, what: str) -> Path:
    """Raise unless ``path`` is an existing directory (``what`` says which one, e.g. 'split dir')."""
    if not path.is_dir():
        raise DatasetError(f"{dataset} {what} '{path}' does not exist")
    return path


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_relative(entry: str, source: str) -> str:
    """Reject absolute paths and '..' components in a relative name read from ``source``."""
    norm = entry.replace("\\", "/")
    parts = PurePosixPath(norm).parts
    if norm.startswith("/") or _DRIVE.match(norm) or ".." in parts:
        raise DatasetError(
            f"{source}: entry '{entry}' escapes the dataset root (absolute path or '..'); "
            "entries must be names relative to the split directory"
        )
    return norm


def read_list_file(list_file: PathLike) -> List[str]:
    """Names from a split list (one per line; blank lines and '#' comments skipped), validated as relative."""
    path = Path(list_file).expanduser()
    if not path.is_file():
        raise DatasetError(f"list file '{path}' does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read list file '{path}': {exc}") from exc
    names: List[str] = []
    for lineno, line in enumerate(lines, 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            names.append(check_relative(entry, f"{path}:{lineno}"))
    if not names:
        raise DatasetError(f"list file '{path}' lists no samples")
    return names


def strip_suffix(name: str, suffixes: Sequence[str]) -> str:
    """Remove the first matching suffix (e.g. '_leftImg8bit.png', '.png') from a list-file entry."""
    for suffix in suffixes:
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def ensure_within(path: Path, root: Path, dataset: str) -> None:
    """Raise if ``path`` (following symlinks) resolves outside ``root``."""
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise DatasetError(f"{dataset}: '{path}' resolves to '{real}', outside the dataset root '{real_root}'")


# ------------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------------
def read_image(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB with OpenCV; raise naming the file if it can't be decoded."""
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        reason = "missing" if not Path(path).is_file() else "corrupt, truncated or not an image"
        raise DatasetError(f"cannot read image '{path}' ({reason})")
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def read_label_png(path: Path) -> np.ndarray:
    """Read a single-channel or palette label PNG as raw ids (uint8/uint16) with PIL.

    PIL keeps palette indices (GTA5 labels are palette PNGs), which ``cv2.imread`` would expand to colours.
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.array(img)
    except FileNotFoundError as exc:
        raise DatasetError(f"cannot read label '{path}' (missing)") from exc
    except Exception as exc:  # PIL raises a zoo of types for corrupt data
        raise DatasetError(f"cannot read label '{path}' (corrupt, truncated or not an image: {exc})") from exc
    if mode in ("L", "P"):
        return arr.astype(np.uint8, copy=False)
    if mode == "1":
        return arr.astype(np.uint8)
    if mode.startswith("I"):
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DatasetError(f"label '{path}' holds ids outside 0..65535 (mode {mode})")
        return arr.astype(np.uint16)
    raise DatasetError(
        f"label '{path}' has PIL mode {mode}; expected a single-channel or palette PNG of label ids"
    )


# ------------------------------------------------------------------------------------------------
# Base dataset
# ------------------------------------------------------------------------------------------------
class SegmentationDataset(Dataset):
    """Paired (image, label) files -> dicts of normalized image tensor, train-id label, name (and private).

    ``transform(image, label)`` returns ``(image_tensor, label_tensor|None, ...)``; when private ids are
    loaded it is called as ``transform(image, label, [private])`` and must return the transformed extras
    third (see :mod:`seg_uda.data.transforms`). ``None`` means plain to-tensor + ImageNet normalization.
    ``on_size_mismatch``: an image whose label has another size raises (default), or with ``"resize"`` is resized
    to its label (bilinear) and logged with a running count in ``size_mismatches`` (per process).
    """

    dataset_name = "dataset"
    ignore_index = IGNORE_INDEX
    #: the label space is data.num_classes (19 or 16 train ids), which the builder passes; a dataset that names
    #: its own classes (``folder``) sets this False
    takes_num_classes = True

    def __init__(
        self,
        root: Path,
        split: str,
        samples: Sequence[SampleFiles],
        mapping: Optional[LabelMapping],
        class_names: Sequence[str],
        palette: Optional[Sequence[Sequence[int]]] = None,
        transform: Optional[Transform] = None,
        with_labels: bool = True,
        load_private: bool = False,
        private_mapping: Optional[LabelMapping] = None,
        on_size_mismatch: str = "raise",
    ) -> None:
        if on_size_mismatch not in SIZE_MISMATCH_POLICIES:
            raise DatasetError(f"{self.dataset_name}: invalid on_size_mismatch={on_size_mismatch!r}; "
                               f"valid: {', '.join(SIZE_MISMATCH_POLICIES)}")
        self.on_size_mismatch = on_size_mismatch
        self.size_mismatches = 0
        self.root = Path(root)
        self.split = split
        self.mapping = mapping
        self.class_names: Tuple[str, ...] = tuple(class_names)
        self.palette: Optional[Tuple[Tuple[int, int, int], ...]] = (
            tuple(tuple(int(c) for c in rgb) for rgb in palette) if palette is not None else None  # type: ignore[misc]
        )
        self.with_labels = with_labels
        self.load_private = load_private
        self.private_mapping = private_mapping
        if transform is None:
            from .transforms import build_eval_transform

            transform = build_eval_transform()
        self.transform = transform
        if not samples:
            raise DatasetError(f"{self.dataset_name} split '{split}' under root '{self.root}' has no samples")
        if load_private and private_mapping is not None and not with_labels:
            raise DatasetError(f"{self.dataset_name}: load_private=True needs with_labels=True "
                               "(private ids come from the labels)")
        for s in samples:
            if not s.image.is_file():
                raise DatasetError(f"{self.dataset_name} image '{s.image}' does not exist")
            if with_labels and (s.label is None or not s.label.is_file()):
                raise DatasetError(f"{self.dataset_name} image '{s.image}' has no label file '{s.label}'")
            if load_private and private_mapping is None and (s.private is None or not s.private.is_file()):
                raise DatasetError(f"{self.dataset_name} image '{s.image}' has no private-id file '{s.private}'")
        self.samples: List[SampleFiles] = list(samples)

    # -- hooks ---------------------------------------------------------------------------------
    def read_label(self, path: Path) -> np.ndarray:
        """Raw label ids of one label file (override for non-standard encodings such as SYNTHIA)."""
        return read_label_png(path)

    # -- API -----------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load_arrays(self, index: int) -> Dict[str, Any]:
        """Decoded, mapped and validated numpy arrays of one sample, before the transform."""
        s = self.samples[index]
        image = read_image(s.image)
        out: Dict[str, Any] = {"name": s.name, "image": image}
        raw: Optional[np.ndarray] = None
        if self.with_labels:
            assert s.label is not None
            raw = self.read_label(s.label)
            image = self._fit_image(image, raw, s.image, s.label)
            out["image"] = image
            out["label"] = self._train_ids(raw, s.label)
        if self.load_private:
            if self.private_mapping is not None:
                assert raw is not None and s.label is not None
                private = self._map(self.private_mapping, raw, s.label)
            else:
                assert s.private is not None
                praw = read_label_png(s.private)
                self._check_size(image, praw, s.image, s.private)
                private = self._map(PRIVATE_MAPPING, praw, s.private)
            if "label" in out:  # private classes are never part of the closed label set
                out["label"] = np.where(private > 0, np.uint8(IGNORE_INDEX), out["label"])
            out["private"] = private
        return out

    def load_train_ids(self, index: int) -> np.ndarray:
        """Train-id label of sample ``index`` at file resolution, without decoding its image (cheap label statistics,
        e.g. rare-class sampling). Private pixels (``load_private``) are not set to 255 here."""
        s = self.samples[index]
        if not self.with_labels or s.label is None:
            raise DatasetError(f"{self.dataset_name}: load_train_ids needs a dataset built with with_labels=True")
        return self._train_ids(self.read_label(s.label), s.label)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        arrays = self.load_arrays(index)
        image, label = arrays["image"], arrays.get("label")
        out: Dict[str, Any] = {"name": arrays["name"]}
        if "private" in arrays:
            res = self.transform(image, label, [arrays["private"]])
            out["private"] = res[2][0]
        else:  # two-argument call, so plain (image, label) -> (image, label) callables work too
            res = self.transform(image, label)
        out["image"] = res[0]
        if self.with_labels:
            out["label"] = res[1]
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root='{self.root}', split='{self.split}', samples={len(self)}, "
            f"num_classes={self.num_classes}, with_labels={self.with_labels})"
        )

    # -- internals -----------------------------------------------------------------------------
    def _fit_image(self, image: np.ndarray, label: np.ndarray, image_path: Path, label_path: Path) -> np.ndarray:
        """``image`` if it has its label's size; else raise, or resize it to the label (``on_size_mismatch``)."""
        if self.on_size_mismatch == "raise" or image.shape[:2] == label.shape[:2]:
            self._check_size(image, label, image_path, label_path)
            return image
        self.size_mismatches += 1
        (lh, lw), (ih, iw) = label.shape[:2], image.shape[:2]
        LOGGER.warning("%s: image '%s' is %dx%d but its label is %dx%d (WxH); resized the image to the label "
                       "(on_size_mismatch=resize; %d such image(s) so far in this process)",
                       self.dataset_name, image_path, iw, ih, lw, lh, self.size_mismatches)
        return cv2.resize(image, (lw, lh), interpolation=cv2.INTER_LINEAR)

    @staticmethod
    def _check_size(image: np.ndarray, label: np.ndarray, image_path: Path, label_path: Path) -> None:
        if image.shape[:2] != label.shape[:2]:
            ih, iw = image.shape[:2]
            lh, lw = label.shape[:2]
            raise DatasetError(
                f"label '{label_path}' is {lw}x{lh} but its image '{image_path}' is {iw}x{ih} (WxH)"
            )

    def _train_ids(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return self._map(self.mapping, raw, path) if self.mapping is not None else raw.astype(np.uint8)

    @staticmethod
    def _map(mapping: LabelMapping, raw: np.ndarray, path: Path) -> np.ndarray:
        try:
            return mapping(raw, path)
        except LabelMappingError as exc:
            raise DatasetError(str(exc)) from exc


def discover_flat(image_dir: Path, split: str, list_file: Optional[PathLike], dataset: str,
                  ext: str = ".png") -> List[str]:
    """Sorted frame names of a flat ``image_dir/NAME.png`` layout: all frames for split 'all', or a list file's."""
    if list_file is not None:
        return [strip_suffix(n, [ext]) for n in read_list_file(list_file)]
    if split != "all":
        raise DatasetError(f"{dataset} has no built-in split '{split}': use split='all' or pass list_file")
    return sorted(p.name[: -len(ext)] for p in image_dir.glob(f"*{ext}") if p.is_file())
