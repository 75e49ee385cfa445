"""Backbone construction through SMP encoders (any SMP name, or any timm model via SMP's ``tu-`` wrapper)."""
from __future__ import annotations

from typing import Optional, Tuple

import segmentation_models_pytorch as smp
import timm
from torch import nn

from .pretrained import (LITE0_OFFLINE, LoadReport, WeightsSpec, describe_weights_options, imagenet_download_guard,
                         is_local_weights, load_encoder_weights)


def resolve_encoder_name(encoder_name: str) -> str:
    """Map a user encoder name to an SMP encoder name: SMP names and ``tu-`` names pass, timm names get ``tu-``."""
    if encoder_name in smp.encoders.encoders or encoder_name.startswith("tu-"):
        return encoder_name
    if timm.is_model(encoder_name.split(".")[0]):
        return "tu-" + encoder_name
    raise KeyError(f"unknown encoder '{encoder_name}': neither an SMP encoder "
                   f"(segmentation_models_pytorch.encoders.get_encoder_names()) nor a timm model (timm.list_models())")


def download_weights_arg(smp_name: str, weights: WeightsSpec) -> object:
    """The ``weights`` argument SMP needs to download ``weights`` for ``smp_name``, or None for offline options.

    Raises ValueError for unknown weight names (listing the valid options).
    """
    if weights is None or weights == LITE0_OFFLINE or is_local_weights(weights):
        return None
    if smp_name.startswith("tu-"):
        if weights == "imagenet" or weights is True:
            return True
        raise ValueError(f"encoder_weights={weights!r} is not valid for timm encoder '{smp_name[3:]}'; "
                         f"expected {describe_weights_options()}")
    available = list(smp.encoders.encoders[smp_name]["pretrained_settings"])
    if weights in available:
        return weights
    raise ValueError(f"encoder_weights={weights!r} is not valid for encoder '{smp_name}'; expected "
                     f"{describe_weights_options()} (SMP downloads for it: {available})")


def make_resnet_caffe_style(encoder: nn.Module) -> None:
    """Turn an SMP/torchvision ResNet into the Caffe/DeepLab layout ADVENT uses: stride on each downsampling
    bottleneck's 1x1 ``conv1`` (not the 3x3), and a ceil-mode max-pool (matches ``DeepLab_resnet_pretrained``)."""
    if not hasattr(encoder, "layer1") or not hasattr(encoder, "maxpool"):
        raise ValueError("caffe_resnet=True needs a ResNet encoder (e.g. encoder_name='resnet101')")
    encoder.maxpool.ceil_mode = True
    for layer in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4):
        block = layer[0]
        if not hasattr(block, "conv3"):
            raise ValueError("caffe_resnet=True needs a bottleneck ResNet (resnet50/101/152), not a basic-block one")
        if block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)


def create_encoder(encoder_name: str, encoder_weights: WeightsSpec = None, output_stride: int = 8,
                   in_channels: int = 3, depth: int = 5) -> Tuple[nn.Module, Optional[LoadReport]]:
    """Build an SMP encoder (returns ``[x, stride2, ..., deepest]`` feature lists) with the requested weights.

    ``output_stride`` 8/16 dilates the last stages (ResNet: layer3 dilation 2, layer4 dilation 4 at 8); 32 = none.
    Returns the encoder and the :class:`LoadReport` of offline weights (None otherwise).
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    name = resolve_encoder_name(encoder_name)
    dl = download_weights_arg(name, encoder_weights)
    if dl is not None:
        with imagenet_download_guard(encoder_name, encoder_weights):
            return smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=dl,
                                            output_stride=output_stride), None
    encoder = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=None,
                                       output_stride=output_stride)
    report = load_encoder_weights(encoder, encoder_name, encoder_weights)
    return encoder, report
