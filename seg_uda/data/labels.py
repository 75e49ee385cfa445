"""Class names, palettes and label-id -> train-id lookup tables for Cityscapes, GTA5, SYNTHIA and IDD.

Every mapping is a :class:`LabelMapping`: a numpy LUT applied by indexing (no per-pixel Python)
plus a table of which raw ids are legal, so an unexpected id fails loudly with the file name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from cityscapesscripts.helpers import labels as _cs

IGNORE_INDEX = 255
"""Train id of pixels that are not evaluated / not trained on."""

RGB = Tuple[int, int, int]

# --------------------------------------------------------------------------------------------
# Cityscapes (19 train ids), taken from cityscapesscripts so ids/colours never drift.
# --------------------------------------------------------------------------------------------
_CS_TRAIN = sorted((lab for lab in _cs.labels if 0 <= lab.trainId < IGNORE_INDEX), key=lambda lab: lab.trainId)
CITYSCAPES_CLASSES: Tuple[str, ...] = tuple(lab.name for lab in _CS_TRAIN)
CITYSCAPES_PALETTE: Tuple[RGB, ...] = tuple(tuple(lab.color) for lab in _CS_TRAIN)  # type: ignore[misc]
assert len(CITYSCAPES_CLASSES) == 19

# --------------------------------------------------------------------------------------------
# SYNTHIA 16 / 13 class subsets, expressed in Cityscapes train-id order.
# --------------------------------------------------------------------------------------------
SYNTHIA16_IN_19: Tuple[int, ...] = tuple(
    CITYSCAPES_CLASSES.index(n)
    for n in (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
        "vegetation", "sky", "person", "rider", "car", "bus", "motorcycle", "bicycle",
    )
)
"""For each of the 16 SYNTHIA classes (compact index 0..15), its Cityscapes 19-class train id."""
SYNTHIA16_CLASSES: Tuple[str, ...] = tuple(CITYSCAPES_CLASSES[i] for i in SYNTHIA16_IN_19)
SYNTHIA16_PALETTE: Tuple[RGB, ...] = tuple(CITYSCAPES_PALETTE[i] for i in SYNTHIA16_IN_19)

SYNTHIA13_IN_16: Tuple[int, ...] = tuple(
    i for i, n in enumerate(SYNTHIA16_CLASSES) if n not in ("wall", "fence", "pole")
)
"""Indices (in the 16-class space) of the 13-class mIoU* subset: the 16 classes minus wall, fence, pole."""
SYNTHIA13_IN_19: Tuple[int, ...] = tuple(SYNTHIA16_IN_19[i] for i in SYNTHIA13_IN_16)
SYNTHIA13_CLASSES: Tuple[str, ...] = tuple(SYNTHIA16_CLASSES[i] for i in SYNTHIA13_IN_16)

PRIVATE_CLASSES: Tuple[str, ...] = ("none", "animal", "autorickshaw")
"""Values of the "private" map: 0 = known/none, 1 = animal, 2 = autorickshaw (tuk-tuk)."""


def class_names(num_classes: int) -> Tuple[str, ...]:
    """Class names of the 19 (Cityscapes), 16 (SYNTHIA) or 13 (SYNTHIA mIoU*) label space."""
    table = {19: CITYSCAPES_CLASSES, 16: SYNTHIA16_CLASSES, 13: SYNTHIA13_CLASSES}
    if num_classes not in table:
        raise ValueError(f"no built-in class list for num_classes={num_classes}; valid: 19, 16, 13")
    return table[num_classes]


def palette(num_classes: int) -> Tuple[RGB, ...]:
    """Cityscapes colours of the 19-, 16- or 13-class label space."""
    table = {
        19: CITYSCAPES_PALETTE,
        16: SYNTHIA16_PALETTE,
        13: tuple(CITYSCAPES_PALETTE[i] for i in SYNTHIA13_IN_19),
    }
    if num_classes not in table:
        raise ValueError(f"no built-in palette for num_classes={num_classes}; valid: 19, 16, 13")
    return table[num_classes]


# --------------------------------------------------------------------------------------------
# Lookup tables
# --------------------------------------------------------------------------------------------
class LabelMappingError(ValueError):
    """A label image holds ids that the mapping does not know (raised with the file name)."""


class LabelMapping:
    """Raw label id -> train id LUT with a table of legal raw ids (8-bit or 16-bit inputs).

    ``mapping`` lists every legal raw id; ids not in it raise :class:`LabelMappingError`.
    """

    def __init__(self, mapping: Mapping[int, int], size: int = 256, name: str = "label") -> None:
        if size not in (256, 65536):
            raise ValueError(f"LUT size must be 256 (8-bit) or 65536 (16-bit), got {size}")
        self.name = name
        self.size = size
        self.lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
        self.known = np.zeros(size, dtype=bool)
        for raw, out in mapping.items():
            if not 0 <= int(raw) < size:
                raise ValueError(f"{name} mapping: raw id {raw} does not fit a LUT of size {size}")
            if not 0 <= int(out) <= 255:
                raise ValueError(f"{name} mapping: output id {out} for raw id {raw} is not in 0..255")
            self.lut[int(raw)] = int(out)
            self.known[int(raw)] = True

    @property
    def known_ids(self) -> List[int]:
        """The raw ids this mapping accepts."""
        return np.flatnonzero(self.known).tolist()

    def __call__(self, raw: np.ndarray, path: Union[str, Path, None] = None) -> np.ndarray:
        """Map a raw id image to uint8 train ids; raise naming ``path`` and the bad ids if any is unknown."""
        where = f" in '{path}'" if path is not None else ""
        if raw.dtype not in (np.uint8, np.uint16):
            raise LabelMappingError(f"{self.name} image{where} has dtype {raw.dtype}; expected uint8 or uint16")
        if raw.dtype == np.uint16 and self.size < 65536:
            top = int(raw.max()) if raw.size else 0
            if top >= self.size:
                bad = np.unique(raw[raw >= self.size])
                raise LabelMappingError(self._message(bad, where))
            raw = raw.astype(np.uint8)
        ok = self.known[raw]
        if not ok.all():
            raise LabelMappingError(self._message(np.unique(raw[~ok]), where))
        return self.lut[raw]

    def _message(self, bad: np.ndarray, where: str) -> str:
        shown = ", ".join(str(int(v)) for v in bad[:20]) + (" ..." if len(bad) > 20 else "")
        return (
            f"{self.name} image{where} contains id(s) outside the {self.name} mapping: {shown} "
            f"(known ids: {_ranges(self.known_ids)})"
        )

    def then(self, other_lut: np.ndarray, name: Optional[str] = None) -> "LabelMapping":
        """Compose with a 256-entry train-id -> train-id LUT (255 stays 255 if ``other_lut[255]`` is 255)."""
        out = LabelMapping({}, size=self.size, name=name or self.name)
        out.known = self.known.copy()
        out.lut = np.asarray(other_lut, dtype=np.uint8)[self.lut]
        return out


def _ranges(ids: Sequence[int]) -> str:
    """Compact '0-33, 255' rendering of a sorted id list."""
    parts: List[str] = []
    start = prev = None
    for v in ids:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            parts.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = v
    if start is not None:
        parts.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ", ".join(parts)


def identity_mapping(num_classes: int, name: str = "label") -> LabelMapping:
    """Accept 0..num_classes-1 and 255 unchanged (labels that already hold train ids)."""
    if not 1 <= num_classes <= 255:
        raise ValueError(f"num_classes must be in 1..255, got {num_classes}")
    m = {i: i for i in range(num_classes)}
    m[IGNORE_INDEX] = IGNORE_INDEX
    return LabelMapping(m, name=name)


# Cityscapes label ids (0..33, as written in *_labelIds.png; license plate id -1 is never drawn).
# 255 is accepted as void too: some converted/ synthetic label sets use it for "unlabeled".
_CS_ID_TO_TRAIN: Dict[int, int] = {
    lab.id: (lab.trainId if 0 <= lab.trainId < IGNORE_INDEX else IGNORE_INDEX) for lab in _cs.labels if lab.id >= 0
}
_CS_ID_TO_TRAIN[IGNORE_INDEX] = IGNORE_INDEX

TRAIN19_TO_16_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
"""19-class train id -> 16-class SYNTHIA index (classes outside the 16 -> 255)."""
for _i16, _i19 in enumerate(SYNTHIA16_IN_19):
    TRAIN19_TO_16_LUT[_i19] = _i16

TRAIN16_TO_19_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
"""16-class SYNTHIA index -> 19-class Cityscapes train id."""
TRAIN16_TO_19_LUT[: len(SYNTHIA16_IN_19)] = SYNTHIA16_IN_19


def _to_space(mapping19: LabelMapping, num_classes: int, name: str) -> LabelMapping:
    if num_classes == 19:
        return mapping19
    if num_classes == 16:
        return mapping19.then(TRAIN19_TO_16_LUT, name=name)
    raise ValueError(f"{name}: num_classes must be 19 or 16, got {num_classes}")


def cityscapes_mapping(num_classes: int = 19) -> LabelMapping:
    """Cityscapes label id (0..33, 255 void) -> 19 train ids, or the 16 SYNTHIA classes."""
    return _to_space(LabelMapping(_CS_ID_TO_TRAIN, name="Cityscapes label"), num_classes, "Cityscapes label")


def gta5_mapping(num_classes: int = 19) -> LabelMapping:
    """GTA5 labels hold Cityscapes label ids (0..33); 255 is accepted as void. Same LUT as Cityscapes."""
    return _to_space(LabelMapping(_CS_ID_TO_TRAIN, name="GTA5 label"), num_classes, "GTA5 label")


# SYNTHIA-RAND-CITYSCAPES class ids (README): 0 void, 1 sky, 2 building, 3 road, 4 sidewalk, 5 fence,
# 6 vegetation, 7 pole, 8 car, 9 traffic sign, 10 pedestrian, 11 bicycle, 12 motorcycle, 13 parking-slot,
# 14 road-work, 15 traffic light, 16 terrain, 17 rider, 18 truck, 19 bus, 20 train, 21 wall, 22 lanemarking.
SYNTHIA_ID_TO_TRAIN19: Dict[int, int] = {
    1: 10, 2: 2, 3: 0, 4: 1, 5: 4, 6: 8, 7: 5, 8: 13, 9: 7, 10: 11,
    11: 18, 12: 17, 15: 6, 16: 9, 17: 12, 18: 14, 19: 15, 20: 16, 21: 3,
}
_SYNTHIA_KNOWN = list(range(23))


def synthia_mapping(num_classes: int = 16) -> LabelMapping:
    """SYNTHIA class id (0..22; R channel of GT/LABELS) -> 16 compact classes, or 19 Cityscapes train ids."""
    m = {i: SYNTHIA_ID_TO_TRAIN19.get(i, IGNORE_INDEX) for i in _SYNTHIA_KNOWN}
    m[IGNORE_INDEX] = IGNORE_INDEX
    return _to_space(LabelMapping(m, size=65536, name="SYNTHIA label"), num_classes, "SYNTHIA label")


# IDD (AutoNUE helpers/anue_labels.py). level3Ids (written by createLabels.py --id-type level3Id):
#  0 road | 1 parking+drivable fallback | 2 sidewalk | 3 rail track+non-drivable fallback | 4 person (+animal)
#  5 rider | 6 motorcycle | 7 bicycle | 8 autorickshaw | 9 car | 10 truck | 11 bus
#  12 caravan+trailer+train+vehicle fallback | 13 curb | 14 wall | 15 fence | 16 guard rail | 17 billboard
#  18 traffic sign | 19 traffic light | 20 pole+polegroup | 21 obs-str-bar-fallback | 22 building
#  23 bridge+tunnel | 24 vegetation | 25 sky+fallback background | 255 unlabeled/void.
# NOTE: level 3 merges 'animal' into 'person', so animals cannot be recovered from level3Ids.
IDD_LEVEL3_NAMES: Tuple[str, ...] = (
    "road", "drivable fallback", "sidewalk", "non-drivable fallback", "person", "rider", "motorcycle",
    "bicycle", "autorickshaw", "car", "truck", "bus", "vehicle fallback", "curb", "wall", "fence",
    "guard rail", "billboard", "traffic sign", "traffic light", "pole", "obs-str-bar-fallback",
    "building", "bridge", "vegetation", "sky",
)
IDD_LEVEL3_TO_TRAIN19: Dict[int, int] = {
    0: 0, 1: 255, 2: 1, 3: 9, 4: 11, 5: 12, 6: 17, 7: 18, 8: 255, 9: 13, 10: 14, 11: 15, 12: 255,
    13: 255, 14: 3, 15: 4, 16: 255, 17: 255, 18: 7, 19: 6, 20: 5, 21: 255, 22: 2, 23: 255, 24: 8,
    25: 10, 255: 255,
}
IDD_LEVEL3_PRIVATE: Dict[int, int] = {8: 2}  # autorickshaw

# IDD full label ids ("id" column; createLabels.py --id-type id -> *_gtFine_labelids.png), 0..39.
# Mapped with AutoNUE's own csTrainId column; animal (7) and autorickshaw (11) are private.
IDD_ID_TO_TRAIN19: Dict[int, int] = {
    0: 0, 1: 255, 2: 255, 3: 1, 4: 255, 5: 9, 6: 11, 7: 255, 8: 12, 9: 17, 10: 18, 11: 255, 12: 13,
    13: 14, 14: 15, 15: 255, 16: 255, 17: 16, 18: 255, 19: 255, 20: 3, 21: 4, 22: 255, 23: 255, 24: 7,
    25: 6, 26: 5, 27: 255, 28: 255, 29: 2, 30: 255, 31: 255, 32: 8, 33: 10, 34: 255, 35: 255, 36: 255,
    37: 255, 38: 255, 39: 255, 255: 255,
}
IDD_ID_PRIVATE: Dict[int, int] = {7: 1, 11: 2}  # animal, autorickshaw


def idd_mapping(label_type: str = "level3Ids", num_classes: int = 19) -> Tuple[LabelMapping, LabelMapping]:
    """(train-id mapping, private mapping) for IDD ``level3Ids`` or full ``ids`` label PNGs."""
    if label_type == "level3Ids":
        table, private = IDD_LEVEL3_TO_TRAIN19, IDD_LEVEL3_PRIVATE
    elif label_type == "ids":
        table, private = IDD_ID_TO_TRAIN19, IDD_ID_PRIVATE
    else:
        raise ValueError(f"unknown IDD label_type '{label_type}'; valid: 'level3Ids', 'ids'")
    name = f"IDD {label_type}"
    main = _to_space(LabelMapping(table, name=name), num_classes, name)
    priv = LabelMapping({k: private.get(k, 0) for k in table}, name=name)
    return main, priv


PRIVATE_MAPPING = LabelMapping({0: 0, 1: 1, 2: 2}, name="private")
"""Validates *_privateIds.png maps (0 none, 1 animal, 2 tuk-tuk/autorickshaw)."""


# --------------------------------------------------------------------------------------------
# Train id -> Cityscapes label id (official submission PNGs) and colouring
# --------------------------------------------------------------------------------------------
TRAINID_TO_LABELID = np.zeros(256, dtype=np.uint8)
"""19-class train id -> Cityscapes label id (first label with that train id); 255/unknown -> 0 'unlabeled'."""
for _t in range(19):
    TRAINID_TO_LABELID[_t] = _cs.trainId2label[_t].id


def trainid_to_labelid_lut(num_classes: int = 19) -> np.ndarray:
    """256-entry uint8 LUT from 19- or 16-class predictions to Cityscapes label ids (for submissions)."""
    if num_classes == 19:
        return TRAINID_TO_LABELID.copy()
    if num_classes == 16:
        return TRAINID_TO_LABELID[TRAIN16_TO_19_LUT]
    raise ValueError(f"num_classes must be 19 or 16, got {num_classes}")


def trainid_to_labelid(train_ids: np.ndarray, num_classes: int = 19) -> np.ndarray:
    """Convert an integer train-id map to Cityscapes label ids (uint8), e.g. for the benchmark server."""
    arr = np.asarray(train_ids)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"train ids must be an integer array, got dtype {arr.dtype}")
    return trainid_to_labelid_lut(num_classes)[_lut_index(arr)]


def colorize(train_ids: np.ndarray, colors: Sequence[Sequence[int]] = CITYSCAPES_PALETTE) -> np.ndarray:
    """Colour an HxW integer map with a palette -> HxWx3 uint8 RGB; ids outside the palette (255) are black."""
    arr = np.asarray(train_ids)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"train ids must be an integer array, got dtype {arr.dtype}")
    pal = np.asarray(colors, dtype=np.int64)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] > 255 or pal.min(initial=0) < 0 or pal.max(initial=0) > 255:
        raise ValueError(f"palette must be a list of at most 255 RGB triples in 0..255, got shape {pal.shape}")
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(pal)] = pal
    return table[_lut_index(arr)]


def _lut_index(arr: np.ndarray) -> np.ndarray:
    """Integer map -> LUT indices, with anything outside 0..255 sent to 255 (ignore)."""
    out = arr.astype(np.intp, copy=True)
    out[(out < 0) | (out > 255)] = IGNORE_INDEX
    return out
