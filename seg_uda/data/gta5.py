"""GTA5 (Playing for Data) source domain: ROOT/images/NNNNN.png + ROOT/labels/NNNNN.png in Cityscapes label ids."""
from __future__ import annotations

from typing import Optional

from .base import PathLike, SampleFiles, SegmentationDataset, Transform, check_dir, check_root, discover_flat
from .labels import class_names, gta5_mapping, palette


class GTA5Dataset(SegmentationDataset):
    """GTA5 frames; split 'all' = every frame under images/ (24,966 in the real set), or the names in ``list_file``.

    Labels are palette PNGs of Cityscapes label ids (0..33; 255 accepted as void), mapped to 19 train ids
    or, with ``num_classes=16``, to the SYNTHIA 16-class space.
    """

    dataset_name = "GTA5"

    def __init__(
        self,
        root: PathLike,
        split: str = "all",
        list_file: Optional[PathLike] = None,
        transform: Optional[Transform] = None,
        num_classes: int = 19,
        with_labels: bool = True,
    ) -> None:
        mapping = gta5_mapping(num_classes)
        base = check_root(root, self.dataset_name)
        image_dir = check_dir(base / "images", self.dataset_name, "image dir")
        label_dir = base / "labels"
        if with_labels:
            check_dir(label_dir, self.dataset_name, "label dir")
        names = discover_flat(image_dir, split, list_file, self.dataset_name)
        samples = [SampleFiles(n, image_dir / f"{n}.png", label_dir / f"{n}.png") for n in names]
        super().__init__(
            base, split, samples, mapping, class_names(num_classes), palette(num_classes),
            transform=transform, with_labels=with_labels,
        )
