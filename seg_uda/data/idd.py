"""India Driving Dataset (IDD) target: leftImg8bit/<split>/<seq>/<name>_leftImg8bit.png + gtFine level3Ids PNGs."""
from __future__ import annotations

from typing import Optional, Tuple

from .base import PathLike, SampleFiles, SegmentationDataset, Transform, check_dir, check_root
from .cityscapes import discover_city_layout
from .labels import class_names, idd_mapping, palette

_LABEL_SUFFIX = {"level3Ids": "_gtFine_labellevel3Ids.png", "ids": "_gtFine_labelids.png"}


class IDDDataset(SegmentationDataset):
    """IDD segmentation mapped to Cityscapes classes (19, or 16 SYNTHIA classes).

    Labels are the PNGs AutoNUE's ``createLabels.py`` writes: ``--id-type level3Id`` (default,
    ``*_gtFine_labellevel3Ids.png``) or ``--id-type id`` (``label_type='ids'``, ``*_gtFine_labelids.png``).
    Autorickshaw (and, with 'ids', animal) are private: 255 in "label"; with ``load_private=True``
    "private" holds 1=animal, 2=autorickshaw. Level 3 merges animal into person, so with level3Ids
    animals stay in the person class and never appear as private 1.
    """

    dataset_name = "IDD"
    image_suffixes: Tuple[str, ...] = ("_leftImg8bit.png", "_leftImg8bit.jpg")

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        list_file: Optional[PathLike] = None,
        transform: Optional[Transform] = None,
        with_labels: bool = True,
        num_classes: int = 19,
        load_private: bool = False,
        label_type: str = "level3Ids",
    ) -> None:
        mapping, private_mapping = idd_mapping(label_type, num_classes)
        base = check_root(root, self.dataset_name)
        check_dir(base / "leftImg8bit", self.dataset_name, "image dir")
        split_dir = check_dir(base / "leftImg8bit" / split, self.dataset_name, f"split '{split}' dir")
        label_dir = base / "gtFine" / split
        if with_labels:
            check_dir(label_dir, self.dataset_name, f"split '{split}' label dir")
        pairs = discover_city_layout(split_dir, list_file, self.image_suffixes, self.dataset_name)
        suffix = _LABEL_SUFFIX[label_type]
        samples = [SampleFiles(name, image, label_dir / f"{name}{suffix}") for name, image in pairs]
        self.label_type = label_type
        super().__init__(
            base, split, samples, mapping, class_names(num_classes), palette(num_classes),
            transform=transform, with_labels=with_labels, load_private=load_private,
            private_mapping=private_mapping,
        )
