"""Open-set segmentation: label protocols (known / private classes), open-set metrics and post-hoc unknown scores.

    protocol = OpenSetProtocol(19, private_classes=["pole", "traffic sign", "person", "rider", "truck", "train"])
    protocol.remap_source(label)            # known -> 0..K-1, private -> 255
    protocol.remap_target(label, private)   # known -> 0..K-1, private -> K (one merged *unknown* class)
"""
from __future__ import annotations

from .metrics import (
    BinnedScoreMetrics, OpenSetMetrics, h_score, openset_from_confusion, score_metrics, score_metrics_from_counts,
)
from .posthoc import UNKNOWN_SCORES, calibrate_threshold, openset_prediction, unknown_score
from ..data.openset import BUS_PRIVATE_CLASSES, OpenSetDataset, OpenSetProtocol, protocol_from_config

__all__ = [
    "OpenSetProtocol", "OpenSetDataset", "protocol_from_config", "BUS_PRIVATE_CLASSES",
    "OpenSetMetrics", "openset_from_confusion", "h_score", "score_metrics", "score_metrics_from_counts",
    "BinnedScoreMetrics", "UNKNOWN_SCORES", "unknown_score", "openset_prediction", "calibrate_threshold",
]
