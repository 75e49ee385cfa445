"""The one evaluation loop: (an ensemble of) models over a labelled dataset at ground-truth resolution,
rank-sharded, feeding each image's fused probabilities to *accumulators* that are summed over ranks at the end.

Training-time validation, ``tools/evaluate.py``, the visualizer, open-set scoring
(:class:`~seg_uda.openset.evaluate.OpenSetAccumulator`) and threshold calibration all run through
:func:`run_evaluation`; :class:`SegmentationAccumulator` is the closed-set confusion matrix (with SYNTHIA's
13-class mIoU for 16-class models) and can save Cityscapes ``labelIds`` PNGs in the submission layout.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..data.labels import SYNTHIA13_IN_16, cityscapes_mapping, trainid_to_labelid
from ..runtime import dist
from ..runtime.sampling import shard_indices
from .confusion import ConfusionMatrix, SegMetrics
from .folder_eval import write_label_png
from .inference import InferenceOptions, class_argmax, predict_sample_probs

PathLike = Union[str, Path]
PREDICTION_SUFFIX = "_pred_labelIds.png"
"""Saved predictions are ``DIR/<name>_pred_labelIds.png`` (name = '<city>/<stem>'), which cityscapesscripts
and :func:`~seg_uda.evaluation.folder_eval.evaluate_prediction_folder` match with ``<stem>*.png``."""


def prediction_path(out_dir: PathLike, name: str) -> Path:
    """Where the prediction of sample ``name`` ('<city>/<stem>' or a relative path) is written."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"sample name {name!r} must be a relative path inside the prediction folder")
    return Path(out_dir) / rel.parent / f"{rel.name}{PREDICTION_SUFFIX}"


def save_labelid_prediction(pred: np.ndarray, name: str, out_dir: PathLike, num_classes: int) -> Path:
    """Write a train-id prediction as a Cityscapes label-id PNG (official submission encoding)."""
    ids = trainid_to_labelid(np.asarray(pred), num_classes=num_classes)
    path = prediction_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_label_png(path, np.ascontiguousarray(ids, dtype=np.uint8))
    return path


def cityscapes_id_to_trainid_for(num_classes: int) -> Dict[int, int]:
    """Cityscapes label id -> train id in the 19- or 16-class space (for scoring saved predictions)."""
    m = cityscapes_mapping(num_classes)
    return {int(i): int(m.lut[i]) for i in m.known_ids if i < 256}


def metrics_dict(metrics: SegMetrics, num_classes: int) -> Dict[str, Any]:
    """``metrics.to_dict()`` plus ``miou_16`` (= miou) and ``miou_13`` (SYNTHIA's 13-class mIoU*) for 16 classes."""
    out = metrics.to_dict()
    if num_classes == 16:
        out["miou_16"] = out["miou"]
        out["miou_13"] = miou_subset(metrics)
    return out


def miou_subset(metrics: SegMetrics, subset: Optional[Sequence[int]] = None) -> Optional[float]:
    """Mean IoU over ``subset`` (default SYNTHIA's 13 classes of the 16) from computed per-class IoUs."""
    ids = SYNTHIA13_IN_16 if subset is None else subset
    vals = [float(metrics.iou[i]) for i in ids if not math.isnan(float(metrics.iou[i]))]
    return sum(vals) / len(vals) if vals else None


class Accumulator(Protocol):
    """What :func:`run_evaluation` feeds: ``update`` per batch (its items and the fused probabilities
    [N, C, H, W] at label resolution), then ``reduce`` once, on every rank, to sum the counts over ranks."""

    def update(self, batch: Dict[str, Any], probs: torch.Tensor) -> None: ...

    def reduce(self) -> None: ...


class MissingLabelsError(ValueError):
    """An evaluation dataset yields images without labels (built with ``with_labels=False``)."""


@torch.no_grad()
def run_evaluation(
    models: Sequence[nn.Module],
    dataset: Any,
    accumulators: Sequence[Accumulator],
    weights: Optional[Sequence[float]] = None,
    fuse: str = "prob",
    options: Optional[InferenceOptions] = None,
    amp: Optional[str] = None,
    max_images: Optional[int] = None,
    num_workers: int = 0,
    on_sample: Optional[Callable[[Dict[str, Any], torch.Tensor], None]] = None,
    require_labels: bool = True,
) -> None:
    """Predict every image of ``dataset`` (items: image, label, name) with the fused ``models`` at its label's
    size and pass it to each accumulator; images are sharded over ranks with ``shard_indices`` and the
    accumulators reduced over all ranks. ``on_sample(batch, probs)`` is called per image (e.g. to render).
    ``require_labels=False`` (label-free scores) accepts unlabelled items and predicts at the image's size."""
    if not models:
        raise ValueError("evaluation needs at least one model")
    if weights is not None and len(weights) != len(models):
        raise ValueError(f"got {len(weights)} ensemble weights for {len(models)} models")
    if len(dataset) == 0:
        raise ValueError("evaluation dataset is empty")
    idx = shard_indices(len(dataset), dist.get_rank(), dist.get_world_size(), max_images)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=1,
                                         num_workers=num_workers)
    for batch in loader:
        if "label" in batch:
            out_size = tuple(batch["label"].shape[-2:])
        elif require_labels:
            raise MissingLabelsError("evaluation dataset has no labels (with_labels=False?)")
        else:
            out_size = tuple(batch["image"].shape[-2:])
        probs = predict_sample_probs(models, batch["image"], out_size, weights, fuse, options, amp)
        for acc in accumulators:
            acc.update(batch, probs)
        if on_sample is not None:
            on_sample(batch, probs)
    for acc in accumulators:
        acc.reduce()


class SegmentationAccumulator:
    """Closed-set scoring: the argmax's confusion matrix over ``num_classes``; ``save_dir`` also writes each
    prediction as a label-id PNG (this rank's shard)."""

    def __init__(self, num_classes: int, class_names: Optional[Sequence[str]] = None,
                 save_dir: Optional[PathLike] = None, device: Union[str, torch.device] = "cpu") -> None:
        self.num_classes, self.class_names, self.save_dir = int(num_classes), class_names, save_dir
        self.confusion = ConfusionMatrix(self.num_classes, device=device)

    def update(self, batch: Dict[str, Any], probs: torch.Tensor) -> None:
        if probs.shape[1] != self.num_classes:
            raise ValueError(f"models predict {probs.shape[1]} classes, the evaluation expects {self.num_classes}")
        pred = class_argmax(probs)
        self.confusion.update(pred, batch["label"].to(pred.device))
        if self.save_dir is not None:
            for i, name in enumerate(batch["name"]):
                save_labelid_prediction(pred[i].cpu().numpy(), name, self.save_dir, self.num_classes)

    def reduce(self) -> None:
        self.confusion.reduce_from_all_processes()

    def metrics(self) -> SegMetrics:
        return self.confusion.compute(class_names=self.class_names)

    def result(self) -> Dict[str, Any]:
        """The metrics as a JSON-ready dict, with ``miou_16`` / ``miou_13`` for 16 classes."""
        return metrics_dict(self.metrics(), self.num_classes)


def model_device(models: Sequence[nn.Module]) -> torch.device:
    return next(models[0].parameters()).device if models else torch.device("cpu")


@torch.no_grad()
def evaluate_models(
    models: Sequence[nn.Module],
    dataset: Any,
    num_classes: int,
    weights: Optional[Sequence[float]] = None,
    fuse: str = "prob",
    options: Optional[InferenceOptions] = None,
    amp: Optional[str] = None,
    max_images: Optional[int] = None,
    class_names: Optional[Sequence[str]] = None,
    save_dir: Optional[PathLike] = None,
    num_workers: int = 0,
    on_sample: Optional[Callable[[Dict[str, Any], torch.Tensor], None]] = None,
) -> SegMetrics:
    """Closed-set metrics of (an ensemble of) ``models`` on ``dataset``: :func:`run_evaluation` with one
    :class:`SegmentationAccumulator`; every rank returns the same metrics."""
    acc = SegmentationAccumulator(num_classes, class_names, save_dir, device=model_device(models))
    run_evaluation(models, dataset, [acc], weights, fuse, options, amp, max_images, num_workers, on_sample)
    return acc.metrics()


def load_metrics_json(path: PathLike) -> Dict[str, Any]:
    """Read a metrics JSON (trainer ``final_metrics.json`` or ``evaluate.py --out-json``): needs miou and iou."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"metrics file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from None
    if isinstance(data, Mapping) and isinstance(data.get("metrics"), Mapping):
        data = data["metrics"]
    if not isinstance(data, Mapping) or "miou" not in data or not isinstance(data.get("iou"), Mapping):
        raise ValueError(f"{p} has no 'miou' and per-class 'iou' mapping")
    return dict(data)


__all__ = [
    "MissingLabelsError",
    "Accumulator", "PREDICTION_SUFFIX", "SegmentationAccumulator", "cityscapes_id_to_trainid_for", "evaluate_models",
    "load_metrics_json", "metrics_dict", "miou_subset", "prediction_path", "run_evaluation", "save_labelid_prediction",
]
