"""Evaluate one model or a weighted ensemble on a labelled dataset at ground-truth resolution, rank-sharded.

Shared by ``tools/evaluate.py``, the visualizer and demos: inference options, metric computation (with the
SYNTHIA 13-class mIoU for 16-class models) and saving Cityscapes ``labelIds`` PNGs in the submission layout.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .confusion import ConfusionMatrix, SegMetrics
from .inference import ensemble_predict

PathLike = Union[str, Path]
PREDICTION_SUFFIX = "_pred_labelIds.png"
"""Saved predictions are ``DIR/<name>_pred_labelIds.png`` (name = '<city>/<stem>'), which cityscapesscripts
and :func:`~seg_uda.evaluation.folder_eval.evaluate_prediction_folder` match with ``<stem>*.png``."""


@dataclass
class InferenceOptions:
    """How each image is predicted: whole / sliding window, flips, scales (see ``inference.predict_probs``)."""

    mode: str = "whole"
    crop_size: Optional[Tuple[int, int]] = None  # (height, width) windows for mode="slide"
    stride: Optional[Tuple[int, int]] = None  # (height, width); default 2/3 of the crop
    flip: bool = False
    scales: Sequence[float] = field(default_factory=lambda: (1.0,))

    def kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``predict_probs`` / ``ensemble_predict``."""
        if self.mode not in ("whole", "slide"):
            raise ValueError(f"inference mode must be 'whole' or 'slide', got {self.mode!r}")
        if self.mode == "slide" and self.crop_size is None:
            raise ValueError("inference mode 'slide' needs a crop size")
        return {"mode": self.mode, "crop_size": self.crop_size, "stride": self.stride, "flip": self.flip,
                "scales": tuple(self.scales)}


def autocast_context(device: torch.device, amp: Optional[str]) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for amp 'bf16' / 'fp16' (CUDA only), or a no-op for None / 'none'."""
    if amp in (None, "none"):
        return contextlib.nullcontext()
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp 'fp16' needs CUDA; use 'bf16' on the CPU")
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {amp!r}")


@torch.no_grad()
def predict_sample_probs(
    models: Sequence[nn.Module],
    image: torch.Tensor,
    out_size: Tuple[int, int],
    weights: Optional[Sequence[float]] = None,
    fuse: str = "prob",
    options: Optional[InferenceOptions] = None,
    amp: Optional[str] = None,
) -> torch.Tensor:
    """Fused softmax probabilities [N, K, H, W] of ``models`` for a normalized image batch, at ``out_size``."""
    opts = options or InferenceOptions()
    device = next(models[0].parameters()).device
    x = image.to(device)
    for m in models:
        m.eval()
    with autocast_context(device, amp):
        probs = ensemble_predict(models, weights, x, out_size, fuse=fuse, **opts.kwargs())
    return probs.float()


def prediction_path(out_dir: PathLike, name: str) -> Path:
    """Where the prediction of sample ``name`` ('<city>/<stem>' or a relative path) is written."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"sample name {name!r} must be a relative path inside the prediction folder")
    return Path(out_dir) / rel.parent / f"{rel.name}{PREDICTION_SUFFIX}"


def save_labelid_prediction(pred: np.ndarray, name: str, out_dir: PathLike, num_classes: int) -> Path:
    """Write a train-id prediction as a Cityscapes label-id PNG (official submission encoding)."""
    from ..data.labels import trainid_to_labelid
    from .folder_eval import write_label_png

    ids = trainid_to_labelid(np.asarray(pred), num_classes=num_classes)
    path = prediction_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_label_png(path, np.ascontiguousarray(ids, dtype=np.uint8))
    return path


def cityscapes_id_to_trainid_for(num_classes: int) -> Dict[int, int]:
    """Cityscapes label id -> train id in the 19- or 16-class space (for scoring saved predictions)."""
    from ..data.labels import cityscapes_mapping

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
    from ..data.labels import SYNTHIA13_IN_16

    ids = SYNTHIA13_IN_16 if subset is None else subset
    vals = [float(metrics.iou[i]) for i in ids if not math.isnan(float(metrics.iou[i]))]
    return sum(vals) / len(vals) if vals else None


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
    """Score (an ensemble of) ``models`` on ``dataset`` (items: image, label, name) at label resolution.

    Images are sharded over ranks with ``shard_indices``; the confusion matrix is summed over all ranks, so
    every rank returns the same metrics. ``save_dir`` writes each prediction as a label-id PNG (this rank's
    shard). ``on_sample(item, probs)`` is called per image (e.g. to render panels).
    """
    from ..engine import dist
    from ..engine.sampling import shard_indices

    if not models:
        raise ValueError("evaluate_models needs at least one model")
    if weights is not None and len(weights) != len(models):
        raise ValueError(f"got {len(weights)} ensemble weights for {len(models)} models")
    if len(dataset) == 0:
        raise ValueError("evaluation dataset is empty")
    device = next(models[0].parameters()).device
    cm = ConfusionMatrix(num_classes, device=device)
    idx = shard_indices(len(dataset), dist.get_rank(), dist.get_world_size(), max_images)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=1,
                                         num_workers=num_workers)
    for batch in loader:
        if "label" not in batch:
            raise ValueError("evaluation dataset has no labels (with_labels=False?)")
        label = batch["label"]
        probs = predict_sample_probs(models, batch["image"], tuple(label.shape[-2:]), weights, fuse, options, amp)
        if probs.shape[1] != num_classes:
            raise ValueError(f"models predict {probs.shape[1]} classes, the evaluation expects {num_classes}")
        pred = probs.argmax(1)
        cm.update(pred, label.to(device))
        if save_dir is not None:
            for i, name in enumerate(batch["name"]):
                save_labelid_prediction(pred[i].cpu().numpy(), name, save_dir, num_classes)
        if on_sample is not None:
            on_sample(batch, probs)
    cm.reduce_from_all_processes()
    return cm.compute(class_names=class_names)


def load_metrics_json(path: PathLike) -> Dict[str, Any]:
    """Read a metrics JSON (trainer ``final_metrics.json`` or ``evaluate.py --out-json``): needs miou and iou."""
    import json

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
    "InferenceOptions", "PREDICTION_SUFFIX", "autocast_context", "cityscapes_id_to_trainid_for", "evaluate_models",
    "load_metrics_json", "metrics_dict", "miou_subset", "predict_sample_probs", "prediction_path",
    "save_labelid_prediction",
]
