"""Rebuild a segmenter from a config and load a seg_uda checkpoint into it (for evaluation, demos, visualization).

The model is built with ``encoder_weights=None`` (nothing is downloaded or read before the checkpoint overwrites
it) and the config's BatchNorm policy, then put in ``eval()`` mode on the requested device. Released ADVENT models
(bare ``ResNetMulti`` state dicts) are recognised and converted; they store no config, so CONFIG is required.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..builders import build_model
from ..config import Config, ConfigError, config_from_dict, load_config
from ..config.loader import deep_merge, parse_overrides
from ..models.pretrained import advent_checkpoint_to_deeplabv2, is_advent_state_dict
from ..runtime.checkpoint import CheckpointError, check_checkpoint, read_checkpoint_file

PathLike = Union[str, Path]


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint whose weights don't fit the model built from the config (names the file)."""


ADVENT_FORMAT = "advent"


def load_eval_checkpoint(path: PathLike) -> Dict[str, Any]:
    """A seg_uda checkpoint, or a released ADVENT model converted to
    ``{"model": DeepLabV2 keys, "format": "advent"}``."""
    obj = read_checkpoint_file(path)
    if is_advent_state_dict(obj):
        return {"model": advent_checkpoint_to_deeplabv2(obj), "format": ADVENT_FORMAT}
    return check_checkpoint(obj, path)


def config_from_checkpoint(ckpt: Mapping[str, Any], path: PathLike, overrides: Sequence[str] = ()) -> Config:
    """The resolved config stored in a checkpoint under "config", with ``key.sub=value`` overrides applied."""
    data = ckpt.get("config")
    if ckpt.get("format") == ADVENT_FORMAT:
        raise CheckpointError(f"{path} is a released ADVENT model, which stores no config; pass the paper CONFIG "
                              "first, e.g. configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml")
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} stores no 'config'; pass the experiment CONFIG explicitly")
    merged = deep_merge(data, parse_overrides(overrides)) if overrides else dict(data)
    try:
        return config_from_dict(merged)
    except ConfigError as e:
        raise ConfigError(f"config stored in {path}: {e}") from None


def inference_config(cfg: Config) -> Config:
    """A copy of ``cfg`` whose model loads no pretrained encoder weights (the checkpoint provides them; every
    registered model takes ``encoder_weights``)."""
    out = copy.deepcopy(cfg)
    out.model.args = {**out.model.args, "encoder_weights": None}
    return out


def _checkpoint_num_classes(ckpt: Mapping[str, Any]) -> Optional[int]:
    cfg = ckpt.get("config")
    if isinstance(cfg, Mapping) and isinstance(cfg.get("data"), Mapping):
        n = cfg["data"].get("num_classes")
        return int(n) if isinstance(n, int) else None
    return None


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> Dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def load_state_into(model: nn.Module, state: Mapping[str, torch.Tensor], path: PathLike, num_classes: int) -> None:
    """Strictly load ``state`` into ``model``; shape or key mismatches raise :class:`CheckpointMismatchError`."""
    state = _strip_prefix(state)
    own = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append("shape mismatch " + "; ".join(mismatched[:5]))
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        raise CheckpointMismatchError(
            f"checkpoint {path} does not fit the model built from the config (num_classes={num_classes}): "
            + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def load_checkpoint_weights(model: nn.Module, ckpt: Mapping[str, Any], path: PathLike, num_classes: int) -> None:
    """Strictly load a checkpoint's "model" weights (seg_uda or converted ADVENT, see `load_eval_checkpoint`) into
    a model of ``num_classes`` (data.num_classes); a checkpoint trained with another count is named first."""
    n_ckpt = _checkpoint_num_classes(ckpt)
    if n_ckpt is not None and n_ckpt != num_classes:
        raise CheckpointMismatchError(f"checkpoint {path} was trained with num_classes={n_ckpt} but the config has "
                                      f"data.num_classes={num_classes}")
    state = ckpt["model"]
    if ckpt.get("format") == ADVENT_FORMAT:  # files saved before PyTorch 0.4.1 have no BN batch counters
        state = {**{k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}, **state}
    load_state_into(model, state, path, num_classes)


def init_model_from(model: nn.Module, path: PathLike, num_classes: int) -> None:
    """``model.init_from``: start training from the segmenter weights of a checkpoint (a seg_uda run's, e.g. a
    source-only model to adapt, or a released ADVENT model); optimizer, schedule and iteration start afresh.
    A missing, truncated or ill-fitting file raises a CheckpointError naming it."""
    load_checkpoint_weights(model, load_eval_checkpoint(path), path, num_classes)


def load_model(
    cfg: Optional[Config],
    checkpoint_path: PathLike,
    device: Union[str, torch.device] = "cpu",
    overrides: Sequence[str] = (),
    checkpoint: Optional[Mapping[str, Any]] = None,
) -> nn.Module:
    """Build the segmenter of ``cfg`` (or of the config stored in the checkpoint when ``cfg`` is None) and load
    the checkpoint's "model" weights; returns it in eval mode on ``device``.

    Raises :class:`CheckpointError` (missing / truncated / not a seg_uda or ADVENT checkpoint) or
    :class:`CheckpointMismatchError` (class count or architecture differs), both naming the file.
    ``checkpoint`` is the already-loaded contents of ``checkpoint_path`` (avoids reading it twice).
    """
    ckpt = load_eval_checkpoint(checkpoint_path) if checkpoint is None else checkpoint
    if cfg is None:
        cfg = config_from_checkpoint(ckpt, checkpoint_path, overrides)
    model = build_model(inference_config(cfg))
    load_checkpoint_weights(model, ckpt, checkpoint_path, cfg.data.num_classes)
    model.to(device)
    if cfg.model.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def load_models(
    cfg: Optional[Config], checkpoint_paths: Sequence[PathLike], device: Union[str, torch.device] = "cpu",
    overrides: Sequence[str] = (), first: Optional[Mapping[str, Any]] = None,
) -> List[nn.Module]:
    """:func:`load_model` for each checkpoint (an ensemble); all must share the config's class count. ``first``
    is the already-loaded contents of the first checkpoint (e.g. from :func:`resolve_config`)."""
    if not checkpoint_paths:
        raise ValueError("no checkpoint given")
    return [load_model(cfg, p, device, overrides, checkpoint=first if i == 0 else None)
            for i, p in enumerate(checkpoint_paths)]


CONFIG_SUFFIXES = (".yaml", ".yml")


def split_cli_inputs(inputs: Sequence[str]) -> Tuple[Optional[str], List[str], List[str]]:
    """Split CLI positionals into (CONFIG or None, checkpoints, ``key=value`` overrides).

    CONFIG is the first token if it ends in .yaml/.yml; ``-`` (or no YAML) means "use the checkpoint's config".
    Tokens containing '=' that are not existing files are overrides.
    """
    overrides = [t for t in inputs if "=" in t and not Path(t).exists()]
    rest = [t for t in inputs if t not in overrides]
    config: Optional[str] = None
    if rest and (rest[0] == "-" or rest[0].endswith(CONFIG_SUFFIXES)):
        config, rest = rest[0], rest[1:]
    if config == "-":
        config = None
    bad = [t for t in rest if t.endswith(CONFIG_SUFFIXES)]
    if bad:
        raise ValueError(f"only one CONFIG may be given, and first; got extra config(s) {bad}")
    return config, rest, overrides


def resolve_config(
    config: Optional[PathLike], checkpoints: Sequence[PathLike], overrides: Sequence[str] = ()
) -> Tuple[Config, Optional[Dict[str, Any]]]:
    """(config, first checkpoint's contents or None): from the YAML ``config`` if given, else from the first
    checkpoint's stored config; overrides applied either way."""
    first = load_eval_checkpoint(checkpoints[0]) if checkpoints else None
    if config is not None:
        return load_config(config, overrides), first
    if first is None:
        raise ValueError("need a CONFIG or at least one checkpoint that stores its config")
    return config_from_checkpoint(first, checkpoints[0], overrides), first
