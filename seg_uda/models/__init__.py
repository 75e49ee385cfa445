"""Segmentation models (DeepLab-v2 / v3+), ADVENT discriminator, gradient reversal, weights and BN policies."""
from __future__ import annotations

from typing import Any, List

from torch import nn

from seg_uda.registry import Registry

MODELS = Registry("model")

from .batchnorm import BN_POLICIES, apply_bn_policy  # noqa: E402
from .deeplabv2 import ASPP_IMPLS, ASPPClassifier, DeepLabV2, set_aspp_impl  # noqa: E402
from .deeplabv3plus import DeepLabV3Plus  # noqa: E402
from .pointwise import POINTWISE_IMPLS, PointwiseGemmConv2d, cpu_has_amx, set_pointwise_impl  # noqa: E402
from .depthwise import DEPTHWISE_IMPLS, FlippedGradDepthwiseConv2d, set_depthwise_impl  # noqa: E402
from .discriminator import DomainClassifier, FCDiscriminator  # noqa: E402
from .grl import GradientReversal, GRLSchedule, grad_reverse, grl_schedule  # noqa: E402
from .pretrained import LITE0_OFFLINE, PretrainedWeightsError, load_lite0_offline_state_dict  # noqa: E402


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the segmenter registered as ``name`` (see :func:`list_models`) with constructor ``kwargs``."""
    return MODELS.build(name, **kwargs)


def list_models() -> List[str]:
    """Names of all registered segmenters."""
    return MODELS.names()


__all__ = [
    "MODELS", "build_model", "list_models", "DeepLabV2", "DeepLabV3Plus", "ASPPClassifier", "ASPP_IMPLS",
    "set_aspp_impl", "POINTWISE_IMPLS", "PointwiseGemmConv2d", "set_pointwise_impl", "cpu_has_amx",
    "DEPTHWISE_IMPLS", "FlippedGradDepthwiseConv2d", "set_depthwise_impl",
    "FCDiscriminator", "DomainClassifier",
    "GradientReversal", "GRLSchedule", "grad_reverse", "grl_schedule", "apply_bn_policy", "BN_POLICIES",
    "LITE0_OFFLINE", "PretrainedWeightsError", "load_lite0_offline_state_dict",
]
