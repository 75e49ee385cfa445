"""Map a validated Config onto the explicit constructors: datasets, model, method, optimizers."""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..config import Config


def dataset_transform(cfg: Config, role: str) -> Any:
    """The albumentations pipeline for `role` in {source, target, val}, normalized as data.normalization."""
    from ..data.transforms import build_eval_transform, build_train_transform

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


def build_dataset(cfg: Config, role: str, with_labels: Optional[bool] = None) -> Any:
    """Build data.<role> with its transform. `with_labels=False` drops target labels (UDA); the oracle keeps them."""
    from ..data import DATASETS

    spec = dict(getattr(cfg.data, role))
    factory = DATASETS.get(spec.pop("type"))
    params = inspect.signature(factory).parameters
    kwargs: Dict[str, Any] = {**spec, "transform": dataset_transform(cfg, role)}
    if "num_classes" in params:
        kwargs["num_classes"] = cfg.data.num_classes
    if with_labels is not None and "with_labels" in params:
        kwargs["with_labels"] = with_labels
    dataset = factory(**kwargs)
    if callable(getattr(dataset, "summary", None)):  # e.g. how many GTA5 pairs this copy holds
        from .dist import is_main_process

        if is_main_process():
            print(f"data.{role}: {dataset.summary()}", flush=True)
    from ..openset.remap import OpenSetDataset, protocol_from_config

    protocol = protocol_from_config(cfg)  # open-set: known -> 0..K-1, private -> 255 (source) / K (target)
    return dataset if protocol is None else OpenSetDataset(dataset, protocol, role)


def num_known_classes(cfg: Config) -> int:
    """K: data.num_classes minus the open-set private classes (= data.num_classes when closed-set)."""
    from ..openset.remap import protocol_from_config

    protocol = protocol_from_config(cfg)
    return cfg.data.num_classes if protocol is None else protocol.num_known


def model_num_outputs(cfg: Config) -> int:
    """Segmenter output channels: K, plus one *unknown* channel when the method declares ``unknown_head``."""
    from ..methods import METHODS

    return num_known_classes(cfg) + int(METHODS.get(cfg.method.name).unknown_head)


def build_model(cfg: Config) -> nn.Module:
    """The segmenter with the config's BatchNorm policy."""
    from ..models import MODELS
    from ..models.batchnorm import apply_bn_policy

    factory = MODELS.get(cfg.model.name)
    n_out = model_num_outputs(cfg)
    if "bn_policy" in inspect.signature(factory).parameters:
        return factory(num_classes=n_out, bn_policy=cfg.model.bn_policy, **cfg.model.args)
    return apply_bn_policy(factory(num_classes=n_out, **cfg.model.args), cfg.model.bn_policy)


def model_multi_level(model: nn.Module) -> bool:
    return bool(getattr(model, "multi_level", False))


def build_method(cfg: Config, model: Optional[nn.Module] = None) -> nn.Module:
    """The UDA method from its `from_config` (K, the method keys, what it declares it takes from the model);
    `multi_level` follows the model unless the method config sets it."""
    from ..methods import METHODS

    factory = METHODS.get(cfg.method.name)
    kwargs = factory.from_config(cfg, model)
    if kwargs.get("multi_level") and model is not None and not model_multi_level(model):
        from ..config import ConfigError

        raise ConfigError(f"method.multi_level=true needs a multi-level model, but model "
                          f"'{cfg.model.name}' has no auxiliary output (set model.multi_level=true)")
    return factory(**kwargs)


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
