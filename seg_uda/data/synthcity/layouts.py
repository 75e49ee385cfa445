"""SynthCity per-domain scene statistics: the camera ranges, traffic density and street composition of the
"game" (GTA-like) and "real" (Cityscapes-like) layouts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Layout:
    """Per-domain scene statistics (camera, traffic density, street composition)."""

    cam_height: Tuple[float, float]
    horizon: Tuple[float, float]  # horizon row as a fraction of the image height
    focal: Tuple[float, float]  # focal length as a fraction of the image width
    yaw_px: float  # max horizontal vanishing-point offset as a fraction of width
    car_gap: float  # mean gap between moving vehicles in a lane (m)
    parked_p: float
    person_rate: float  # persons per 10 m of sidewalk
    p_building: float
    p_park: float
    p_crossing: float
    tree_p: float
    p_tram: float
    p_private: float  # fraction of frames that contain private (open-set) objects
    p_ego: float  # probability of an ego-vehicle hood at the bottom


LAYOUTS: Dict[str, Layout] = {
    # GTA-like: higher camera, wider field of view, busier roads, more parks.
    "game": Layout(cam_height=(1.6, 2.3), horizon=(0.40, 0.48), focal=(0.72, 0.9), yaw_px=0.06,
                   car_gap=14.0, parked_p=0.45, person_rate=0.9, p_building=0.58, p_park=0.3,
                   p_crossing=0.12, tree_p=0.55, p_tram=0.08, p_private=0.0, p_ego=0.0),
    # Cityscapes-like: low roof camera, narrower field of view, dense parked cars and buildings.
    "real": Layout(cam_height=(1.15, 1.5), horizon=(0.36, 0.47), focal=(0.95, 1.2), yaw_px=0.1,
                   car_gap=20.0, parked_p=0.75, person_rate=1.3, p_building=0.72, p_park=0.17,
                   p_crossing=0.11, tree_p=0.45, p_tram=0.06, p_private=0.3, p_ego=0.7),
}
