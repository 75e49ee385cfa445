"""Generic folder dataset: ROOT/images/NAME.(png|jpg) + ROOT/labels/NAME.png holding class indices (255 ignore)."""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .base import (
    DatasetError, PathLike, SampleFiles, SegmentationDataset, Transform, check_dir, check_relative, check_root,
    ensure_within, read_list_file, strip_suffix,
)
from .labels import identity_mapping

IMAGE_EXTS: Tuple[str, ...] = (".png", ".jpg", ".jpeg")


class FolderDataset(SegmentationDataset):
    """Images with index-label PNGs under one root; ``split`` selects ``images/<split>`` + ``labels/<split>``.

    Files are discovered recursively (name = relative path without extension) unless ``list_file`` names
    them. Every image/label must stay inside ``root``: list entries with '..' or absolute paths and
    symlinks resolving outside the root are rejected.
    """

    takes_num_classes = False  # its classes are class_names, not a Cityscapes train-id space

    dataset_name = "Folder"

    def __init__(
        self,
        root: PathLike,
        class_names: Sequence[str],
        palette: Optional[Sequence[Sequence[int]]] = None,
        split: Optional[str] = None,
        list_file: Optional[PathLike] = None,
        transform: Optional[Transform] = None,
        with_labels: bool = True,
    ) -> None:
        names_ = _check_class_names(class_names)
        pal = _check_palette(palette, len(names_))
        base = check_root(root, self.dataset_name)
        sub = check_relative(split, "split") if split else ""
        image_dir = check_dir(base / "images" / sub, self.dataset_name, "image dir")
        label_dir = base / "labels" / sub
        if with_labels:
            check_dir(label_dir, self.dataset_name, "label dir")
        samples = [
            SampleFiles(name, image, label_dir / f"{name}.png")
            for name, image in self._discover(image_dir, list_file)
        ]
        for s in samples:
            ensure_within(s.image, base, self.dataset_name)
            if with_labels:
                assert s.label is not None
                ensure_within(s.label, base, self.dataset_name)
        super().__init__(
            base, split or "", samples, identity_mapping(len(names_), name="Folder label"), names_, pal,
            transform=transform, with_labels=with_labels,
        )

    def _discover(self, image_dir: Path, list_file: Optional[PathLike]) -> List[Tuple[str, Path]]:
        if list_file is not None:
            found: List[Tuple[str, Path]] = []
            for entry in read_list_file(list_file):
                name = strip_suffix(entry, IMAGE_EXTS)
                path = next((image_dir / f"{name}{e}" for e in IMAGE_EXTS
                             if (image_dir / f"{name}{e}").is_file()), None)
                if path is None:
                    raise DatasetError(f"Folder: '{entry}' from list file '{list_file}' has no image in '{image_dir}'")
                found.append((name, path))
            return found
        found = [
            (p.relative_to(image_dir).with_suffix("").as_posix(), p)
            for p in image_dir.rglob("*")
            if p.suffix.lower() in IMAGE_EXTS and p.is_file()
        ]
        return sorted(found)


def _check_class_names(class_names: Sequence[str]) -> Tuple[str, ...]:
    if isinstance(class_names, str):
        raise DatasetError("class_names must be a list of names, not a single string")
    names = tuple(str(n) for n in class_names)
    if not 1 <= len(names) <= 255:
        raise DatasetError(f"class_names must hold 1..255 names (255 is the ignore index), got {len(names)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"class_names has duplicates: {dupes}")
    return names


def _check_palette(palette: Optional[Sequence[Sequence[int]]], n: int) -> Optional[List[Tuple[int, int, int]]]:
    if palette is None:
        return None
    pal = [tuple(c) for c in palette]
    if len(pal) != n:
        raise DatasetError(f"palette has {len(pal)} colours but there are {n} class_names")
    for i, c in enumerate(pal):
        if len(c) != 3 or not all(isinstance(v, numbers.Integral) and 0 <= v <= 255 for v in c):
            raise DatasetError(f"palette entry {i} {c!r} is not an RGB triple of ints in 0..255")
    return [(int(c[0]), int(c[1]), int(c[2])) for c in pal]
