"""SYNTHIA-RAND-CITYSCAPES source domain: ROOT/RGB/NNNNNNN.png + 16-bit ROOT/GT/LABELS/NNNNNNN.png."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .base import (
    DatasetError, PathLike, SampleFiles, SegmentationDataset, Transform, check_dir, check_root, discover_flat,
)
from .labels import class_names, palette, synthia_mapping


def read_synthia_label(path: Path) -> np.ndarray:
    """Class ids of a SYNTHIA GT/LABELS PNG: 16-bit, class id in the R channel (index 2 of OpenCV's BGR)."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        reason = "missing" if not Path(path).is_file() else "corrupt, truncated or not an image"
        raise DatasetError(f"cannot read SYNTHIA label '{path}' ({reason})")
    if data.ndim == 3:
        if data.shape[2] < 3:
            raise DatasetError(f"SYNTHIA label '{path}' has {data.shape[2]} channels; expected 3 (BGR) or 4")
        data = data[:, :, 2]
    if data.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"SYNTHIA label '{path}' has dtype {data.dtype}; expected 16-bit (or 8-bit) PNG")
    return np.ascontiguousarray(data)


class SynthiaDataset(SegmentationDataset):
    """SYNTHIA-RAND-CITYSCAPES; split 'all' = every frame (9,400 in the real set), or the names in ``list_file``.

    ``num_classes=16`` (default) gives the 16 classes shared with Cityscapes in compact train-id order
    (see ``labels.SYNTHIA16_CLASSES``; the 13-class subset is ``labels.SYNTHIA13_IN_16``); 19 gives
    Cityscapes train ids.
    """

    dataset_name = "SYNTHIA"

    def __init__(
        self,
        root: PathLike,
        split: str = "all",
        list_file: Optional[PathLike] = None,
        transform: Optional[Transform] = None,
        num_classes: int = 16,
        with_labels: bool = True,
    ) -> None:
        mapping = synthia_mapping(num_classes)
        base = check_root(root, self.dataset_name)
        image_dir = check_dir(base / "RGB", self.dataset_name, "image dir")
        label_dir = base / "GT" / "LABELS"
        if with_labels:
            check_dir(label_dir, self.dataset_name, "label dir")
        names = discover_flat(image_dir, split, list_file, self.dataset_name)
        samples = [SampleFiles(n, image_dir / f"{n}.png", label_dir / f"{n}.png") for n in names]
        super().__init__(
            base, split, samples, mapping, class_names(num_classes), palette(num_classes),
            transform=transform, with_labels=with_labels,
        )

    def read_label(self, path: Path) -> np.ndarray:
        return read_synthia_label(path)
