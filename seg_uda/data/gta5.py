"""GTA5 (Playing for Data) source domain: ROOT/images/NNNNN.png + ROOT/labels/NNNNN.png in Cityscapes label ids."""
from __future__ import annotations

from typing import List, Literal, Optional

from .base import PathLike, SampleFiles, SegmentationDataset, Transform, check_dir, check_root, discover_flat
from .labels import class_names, gta5_mapping, palette

FULL_RELEASE_PAIRS = 24966
KNOWN_MISSING_IDS = (*range(2154, 2159), *range(4634, 4638), *range(7115, 7120), *range(9683, 9689),
                     *range(12050, 12055))
"""The 25 frame ids some GTA5 downloads lack (24,941 pairs instead of 24,966; IAST-ECCV2020 issue #2)."""


class GTA5Dataset(SegmentationDataset):
    """GTA5 frames; split 'all' = every frame under images/ (24,966 in the full release, 24,941 in some copies),
    or the names in ``list_file`` (a list of the full release, e.g. ADVENT's all.txt, also works on a 24,941 copy:
    list entries among `KNOWN_MISSING_IDS` without an image are skipped; any other missing entry raises).

    Labels are palette PNGs of Cityscapes label ids (0..33; 255 accepted as void), mapped to 19 train ids
    or, with ``num_classes=16``, to the SYNTHIA 16-class space. ``on_size_mismatch``: see SegmentationDataset.
    `summary()` says how many pairs were found (the trainer's data builder prints it).
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
        on_size_mismatch: Literal["raise", "resize"] = "raise",
    ) -> None:
        mapping = gta5_mapping(num_classes)
        base = check_root(root, self.dataset_name)
        image_dir = check_dir(base / "images", self.dataset_name, "image dir")
        label_dir = base / "labels"
        if with_labels:
            check_dir(label_dir, self.dataset_name, "label dir")
        names = discover_flat(image_dir, split, list_file, self.dataset_name)
        known_missing = {f"{i:05d}" for i in KNOWN_MISSING_IDS}
        self.skipped: List[str] = [n for n in names if n in known_missing and not (image_dir / f"{n}.png").exists()]
        names = [n for n in names if n not in self.skipped]
        samples = [SampleFiles(n, image_dir / f"{n}.png", label_dir / f"{n}.png") for n in names]
        super().__init__(
            base, split, samples, mapping, class_names(num_classes), palette(num_classes),
            transform=transform, with_labels=with_labels, on_size_mismatch=on_size_mismatch,
        )

    def summary(self) -> str:
        """One line for the log: how many image/label pairs were found, and which known copy that is."""
        n = len(self)
        what = "image/label pairs" if self.with_labels else "images"
        line = f"GTA5 '{self.split}': {n:,} {what} under {self.root}"
        have = set(self.names)
        if n == FULL_RELEASE_PAIRS:
            line += " (the full release)"
        elif n == FULL_RELEASE_PAIRS - len(KNOWN_MISSING_IDS) and not have & {f"{i:05d}" for i in KNOWN_MISSING_IDS}:
            line += " (the known 24,941-pair copy: ids 2154-2158, 4634-4637, 7115-7119, 9683-9688, 12050-12054 missing)"
        if self.skipped:
            line += f"; skipped {len(self.skipped)} list entries known to be missing from some copies"
        if self.on_size_mismatch == "resize":
            line += "; images whose label differs in size are resized to it and logged"
        return line
