"""Cityscapes target domain: leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png + gtFine labelIds (+ privateIds)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .base import (
    DatasetError, PathLike, SampleFiles, SegmentationDataset, Transform, check_dir, check_root, read_list_file,
    strip_suffix,
)
from .labels import class_names, cityscapes_mapping, palette


def discover_city_layout(
    split_dir: Path, list_file: Optional[PathLike], image_suffixes: Sequence[str], dataset: str
) -> List[Tuple[str, Path]]:
    """Sorted (name, image path) of ``split_dir/<folder>/<stem><suffix>`` files; name = '<folder>/<stem>'.

    A list file overrides discovery; its entries are '<folder>/<stem>' optionally with an image suffix.
    """
    if list_file is not None:
        found: List[Tuple[str, Path]] = []
        for entry in read_list_file(list_file):
            name = strip_suffix(entry, list(image_suffixes) + [".png"])
            candidates = [split_dir / f"{name}{suf}" for suf in image_suffixes]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise DatasetError(f"{dataset}: '{entry}' from list file '{list_file}' has no image '{candidates[0]}'")
            found.append((name, path))
        return found
    found = []
    for suffix in image_suffixes:
        for path in split_dir.glob(f"*/*{suffix}"):
            if path.is_file():
                found.append((f"{path.parent.name}/{path.name[: -len(suffix)]}", path))
    return sorted(found)


class CityscapesDataset(SegmentationDataset):
    """Cityscapes fine annotations. ``num_classes`` 19 (train ids) or 16 (SYNTHIA classes; others -> 255).

    ``load_private=True`` also reads ``<stem>_gtFine_privateIds.png`` (0 none, 1 animal, 2 tuk-tuk, written
    by the SynthCity generator) into ``"private"``; private pixels are then set to 255 in ``"label"``.
    """

    dataset_name = "Cityscapes"
    image_suffixes: Tuple[str, ...] = ("_leftImg8bit.png",)
    label_suffix = "_gtFine_labelIds.png"
    private_suffix = "_gtFine_privateIds.png"

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        list_file: Optional[PathLike] = None,
        transform: Optional[Transform] = None,
        with_labels: bool = True,
        num_classes: int = 19,
        load_private: bool = False,
    ) -> None:
        mapping = cityscapes_mapping(num_classes)
        base = check_root(root, self.dataset_name)
        check_dir(base / "leftImg8bit", self.dataset_name, "image dir")
        split_dir = check_dir(base / "leftImg8bit" / split, self.dataset_name, f"split '{split}' dir")
        label_dir = base / "gtFine" / split
        if with_labels or load_private:
            check_dir(label_dir, self.dataset_name, f"split '{split}' label dir")
        pairs = discover_city_layout(split_dir, list_file, self.image_suffixes, self.dataset_name)
        samples = [
            SampleFiles(
                name, image,
                label_dir / f"{name}{self.label_suffix}",
                label_dir / f"{name}{self.private_suffix}" if load_private else None,
            )
            for name, image in pairs
        ]
        super().__init__(
            base, split, samples, mapping, class_names(num_classes), palette(num_classes),
            transform=transform, with_labels=with_labels, load_private=load_private,
        )
