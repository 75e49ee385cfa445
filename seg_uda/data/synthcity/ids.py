"""SynthCity ids shared by the scene sampler and the styles: Cityscapes label ids, private (open-set) class ids,
material ids and the depth models of a drawn record."""
from __future__ import annotations

from typing import Dict, Tuple

# Cityscapes label ids (cityscapesscripts.helpers.labels) used by the generator.
UNLABELED, EGO_VEHICLE = 0, 1
ROAD, SIDEWALK, BUILDING, WALL, FENCE = 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33

#: private (open-set) target-only classes: value stored in ``*_gtFine_privateIds.png``.
PRIVATE_NONE, PRIVATE_ANIMAL, PRIVATE_TUKTUK = 0, 1, 2
PRIVATE_CLASSES: Dict[int, str] = {PRIVATE_ANIMAL: "animal", PRIVATE_TUKTUK: "tuk-tuk"}

#: material names; the style maps (material, tone) to colour and texture.
MATERIALS: Tuple[str, ...] = (
    "sky", "asphalt", "lane_paint", "paving", "curb", "facade", "glass", "shopfront", "door", "roof",
    "concrete", "fence", "metal", "tl_housing", "lamp_red", "lamp_amber", "lamp_green", "sign_face",
    "sign_border", "sign_back", "foliage", "bark", "grass", "soil", "car_paint", "tyre", "rim", "car_light",
    "skin", "hair", "cloth_top", "cloth_bottom", "bus_paint", "truck_paint", "train_paint", "bike_frame",
    "fur", "tuktuk_paint", "interior", "ego_hood", "lamp_head", "rail",
)
M: Dict[str, int] = {name: i for i, name in enumerate(MATERIALS)}

#: depth models of a record: constant depth, ground plane (depth from the row), vertical plane X = c.
KIND_CONST, KIND_GROUND, KIND_XPLANE = 0, 1, 2
