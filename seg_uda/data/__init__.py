"""Datasets (GTA5, SYNTHIA, Cityscapes, IDD, folder), label mappings and transforms, plus the DATASETS registry."""
from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import DatasetError, SampleFiles, SegmentationDataset
from .cityscapes import CityscapesDataset
from .folder import FolderDataset
from .gta5 import GTA5Dataset
from .idd import IDDDataset
from .labels import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    IGNORE_INDEX,
    PRIVATE_CLASSES,
    SYNTHIA13_CLASSES,
    SYNTHIA13_IN_16,
    SYNTHIA13_IN_19,
    SYNTHIA16_CLASSES,
    SYNTHIA16_IN_19,
    SYNTHIA16_PALETTE,
    TRAINID_TO_LABELID,
    LabelMapping,
    class_names,
    colorize,
    palette,
    trainid_to_labelid,
    trainid_to_labelid_lut,
)
from .synthia import SynthiaDataset
from .transforms import (
    BGR_NORMALIZATIONS,
    NORMALIZATIONS,
    EvalTransform,
    TrainTransform,
    TransformOutput,
    build_eval_transform,
    build_train_transform,
    denormalize,
    normalization,
)

DATASETS = Registry("dataset")
DATASETS.register("gta5")(GTA5Dataset)
DATASETS.register("synthia")(SynthiaDataset)
DATASETS.register("cityscapes")(CityscapesDataset)
DATASETS.register("idd")(IDDDataset)
DATASETS.register("folder")(FolderDataset)


def build_dataset(name: str, **kwargs: Any) -> SegmentationDataset:
    """Build a registered dataset by name ('gta5', 'synthia', 'cityscapes', 'idd', 'folder') with its kwargs."""
    return DATASETS.build(name, **kwargs)


__all__ = [
    "DATASETS", "build_dataset", "DatasetError", "SampleFiles", "SegmentationDataset",
    "GTA5Dataset", "SynthiaDataset", "CityscapesDataset", "IDDDataset", "FolderDataset",
    "IGNORE_INDEX", "CITYSCAPES_CLASSES", "CITYSCAPES_PALETTE", "SYNTHIA16_CLASSES", "SYNTHIA16_PALETTE",
    "SYNTHIA16_IN_19", "SYNTHIA13_CLASSES", "SYNTHIA13_IN_16", "SYNTHIA13_IN_19", "PRIVATE_CLASSES",
    "TRAINID_TO_LABELID", "LabelMapping", "class_names", "palette", "colorize", "trainid_to_labelid",
    "trainid_to_labelid_lut",
    "NORMALIZATIONS", "BGR_NORMALIZATIONS", "normalization", "denormalize", "build_train_transform",
    "build_eval_transform", "TrainTransform", "EvalTransform", "TransformOutput",
]
