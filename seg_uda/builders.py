"""Map a validated Config onto the explicit constructors: datasets, model, method, optimizers.

Nothing here inspects a signature: datasets declare ``takes_num_classes``, models take ``num_classes`` and
``bn_policy`` (the model contract, docs/architecture.md), methods build their arguments in ``from_config``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .config import Config, ConfigError
from .data import DATASETS
from .data.transforms import build_eval_transform, build_train_transform
from .methods import METHODS
from .models import MODELS
from .data.openset import OpenSetDataset, protocol_from_config
from .data.rare_class import RareClassSampler, class_pixel_counts, source_label_histogram
from .runtime.dist import is_main_process


def dataset_transform(cfg: Config, role: str) -> Any:
    """The albumentations pipeline for `role` in {source, target, val}, normalized as data.normalization."""
    d = cfg.data
    norm = d.normalization  # by name, so that 'caffe' also gets its BGR channel order
    if role == "val":
        return build_eval_transform(size=tuple(d.val_size) if d.val_size else None, normalize=norm,
                                    resize_backend=d.resize_backend)
    size = d.source_size if role == "source" else d.target_size
    crop = d.source_crop if role == "source" else d.target_crop
    return build_train_transform(size=tuple(size), crop_size=tuple(crop) if crop else None,
                                 scale_range=tuple(d.scale_range) if d.scale_range else None,
                                 hflip=d.hflip, color_jitter=d.color_jitter, normalize=norm,
                                 resize_backend=d.resize_backend)


def build_dataset(cfg: Config, role: str, with_labels: Optional[bool] = None,
                  transform_role: Optional[str] = None, announce: bool = True) -> Any:
    """Build data.<role> with its transform (``transform_role``'s, e.g. 'val' to predict the target-train images
    un-augmented). `with_labels=False` drops target labels (UDA); the oracle keeps them. `announce=False` skips the
    dataset's one-line summary (for a second build of a role already logged)."""
    transform = dataset_transform(cfg, transform_role or role)
    dataset = _dataset_from_spec(cfg, getattr(cfg.data, role), transform, with_labels)
    if announce and callable(getattr(dataset, "summary", None)) and is_main_process():
        print(f"data.{role}: {dataset.summary()}", flush=True)  # e.g. how many GTA5 pairs
    protocol = protocol_from_config(cfg)  # open-set: known -> 0..K-1, private -> 255 (source) / K (target)
    return dataset if protocol is None else OpenSetDataset(dataset, protocol, role)


def _dataset_from_spec(cfg: Config, spec: Dict[str, Any], transform: Any, with_labels: Optional[bool]) -> Any:
    """``DATASETS[spec.type](**spec, transform)`` plus data.num_classes where the class ``takes_num_classes``."""
    kwargs = dict(spec)
    factory = DATASETS.get(kwargs.pop("type"))
    kwargs["transform"] = transform
    if getattr(factory, "takes_num_classes", False):
        kwargs["num_classes"] = cfg.data.num_classes
    if with_labels is not None:
        kwargs["with_labels"] = with_labels
    return factory(**kwargs)


def build_source_sampler(cfg: Config, dataset: Any, seed: int, rank: int, world_size: int,
                         start: int) -> Optional[torch.utils.data.Sampler]:
    """DAFormer rare-class sampling of the source stream when data.rcs_temperature is set, else None (uniform
    epochs). ``start``: this rank's samples already drawn (start_batch * batch_size), as InfiniteStreamSampler's."""
    temperature = cfg.data.rcs_temperature
    if temperature is None:
        return None
    counts = class_pixel_counts(dataset, num_known_classes(cfg))
    sampler = RareClassSampler(counts, temperature, cfg.data.rcs_min_pixels, seed=seed, rank=rank,
                               world_size=world_size, start=start)
    if rank == 0:
        names = list(getattr(dataset, "class_names", None) or [])
        top = np.argsort(-sampler.probs, kind="stable")[:5]
        desc = ", ".join(f"{names[c] if c < len(names) else c} {p:.3f}"
                         for c, p in zip(sampler.classes[top], sampler.probs[top]))
        print(f"data.source: rare-class sampling (T={temperature}, min_pixels={cfg.data.rcs_min_pixels}, "
              f"{len(sampler.classes)} classes); most likely: {desc}", flush=True)
    return sampler


def build_calibration_dataset(cfg: Config) -> Any:
    """``data.openset.calibration`` (held-out labelled source frames) with an eval transform at data.source_size,
    remapped as a *source* (private -> 255): what open-set thresholds are calibrated on, without target labels."""
    oc = cfg.data.openset
    if oc.calibration is None:
        raise ValueError("automatic thresholds need data.openset.calibration (a held-out labelled source split)")
    transform = build_eval_transform(size=tuple(cfg.data.source_size), normalize=cfg.data.normalization,
                                     resize_backend=cfg.data.resize_backend)
    ds = _dataset_from_spec(cfg, dict(oc.calibration), transform, None)
    protocol = protocol_from_config(cfg)
    return ds if protocol is None else OpenSetDataset(ds, protocol, "source")


def num_known_classes(cfg: Config) -> int:
    """K: data.num_classes minus the open-set private classes (= data.num_classes when closed-set)."""
    protocol = protocol_from_config(cfg)
    return cfg.data.num_classes if protocol is None else protocol.num_known


def model_num_outputs(cfg: Config) -> int:
    """Segmenter output channels: K, plus one *unknown* channel when the method declares ``unknown_head``."""
    return num_known_classes(cfg) + int(METHODS.get(cfg.method.name).unknown_head)


def build_model(cfg: Config) -> nn.Module:
    """The segmenter with the config's BatchNorm policy (every registered model takes num_classes and bn_policy)."""
    return MODELS.get(cfg.model.name)(num_classes=model_num_outputs(cfg), bn_policy=cfg.model.bn_policy,
                                      **cfg.model.args)


def model_multi_level(model: nn.Module) -> bool:
    return bool(getattr(model, "multi_level", False))


def build_method(cfg: Config, model: Optional[nn.Module] = None) -> nn.Module:
    """The UDA method from its `from_config` (K, the method keys, what it declares it takes from the model);
    `multi_level` follows the model unless the method config sets it."""
    factory = METHODS.get(cfg.method.name)
    kwargs = factory.from_config(cfg, model)
    if factory.wants_source_prior(kwargs):  # e.g. ADVENT's class-ratio prior: the source label histogram
        kwargs["class_prior"] = source_class_prior(cfg)
        if is_main_process():
            print("method: source class prior " + " ".join(f"{v:.3f}" for v in kwargs["class_prior"]), flush=True)
    if kwargs.get("multi_level") and model is not None and not model_multi_level(model):
        raise ConfigError(f"method.multi_level=true needs a multi-level model, but model "
                          f"'{cfg.model.name}' has no auxiliary output (set model.multi_level=true)")
    return factory(**kwargs)


def source_class_prior(cfg: Config) -> List[float]:
    """Share of each known class among all of data.source's labelled pixels (counted once, cached beside the data)."""
    source = build_dataset(cfg, "source", announce=False)  # the trainer builds and logs it again for its loader
    return source_label_histogram(class_pixel_counts(source, num_known_classes(cfg)))


def segmenter_param_groups(cfg: Config, model: nn.Module, method: nn.Module) -> List[Dict[str, Any]]:
    """SGD groups: backbone at lr*backbone_lr_mult (or frozen), heads and method extras at lr*head_lr_mult."""
    o = cfg.optim
    backbone = list(model.backbone_parameters())
    if o.freeze_backbone:
        for p in backbone:
            p.requires_grad_(False)
    groups = []
    bb = [p for p in backbone if p.requires_grad]
    if bb and not o.freeze_backbone:
        groups.append({"name": "backbone", "params": bb, "lr": o.lr * o.backbone_lr_mult})
    head = [p for p in model.head_parameters() if p.requires_grad]
    extra = [p for p in method.extra_parameters() if p.requires_grad]
    groups.append({"name": "head", "params": head + extra, "lr": o.lr * o.head_lr_mult})
    return groups


def build_optimizers(cfg: Config, model: nn.Module, method: nn.Module
                     ) -> Tuple[torch.optim.Optimizer, Optional[torch.optim.Optimizer]]:
    """SGD for the segmenter (+ method extras), Adam for the discriminators (None when there are none)."""
    o = cfg.optim
    opt = torch.optim.SGD(segmenter_param_groups(cfg, model, method), lr=o.lr, momentum=o.momentum,
                          weight_decay=o.weight_decay, nesterov=o.nesterov)
    d_params = list(method.discriminator_parameters()) if method.has_discriminators else []
    d_opt = torch.optim.Adam(d_params, lr=o.disc_lr, betas=tuple(o.disc_betas)) if d_params else None
    return opt, d_opt
