"""UDA methods (source_only, oracle, minent, advent, advent_minent, dann) behind one `UDAMethod` interface.

    method = build_method("advent", num_classes=19, multi_level=True)
    losses, cache = method.generator_step(model, source, target, progress)   # sum(losses.values()).backward()
    d_losses = method.discriminator_step(cache)                             # sum(d_losses.values()).backward()
"""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from . import losses
from .advent import AdvEnt, AdvEntMinEnt, EntropyAdaptation, MinEnt
from .base import METHODS, SOURCE_LABEL, TARGET_LABEL, UDAMethod, frozen
from .dann import DANN, DomainClassifier, grl_schedule
from .osbp import OSBP, OSBPAdvEnt, OSBPMinEnt, osbp_unknown_loss  # noqa: F401  (registers osbp*)
from .supervised import Oracle, SourceOnly

__all__ = [
    "METHODS", "build_method", "UDAMethod", "frozen", "SOURCE_LABEL", "TARGET_LABEL", "losses",
    "SourceOnly", "Oracle", "EntropyAdaptation", "MinEnt", "AdvEnt", "AdvEntMinEnt",
    "DANN", "DomainClassifier", "grl_schedule",
]


def build_method(name: str, *, model: nn.Module | None = None, **kwargs: Any) -> UDAMethod:
    """Build the registered method `name` with keyword arguments (unknown names raise a KeyError listing valid ones).

    If `model` is given and the method takes `feat_channels` (DANN) that was not passed, it is read from
    `model.feat_channels`.
    """
    cls = METHODS.get(name)
    if model is not None and "feat_channels" not in kwargs:
        if "feat_channels" in inspect.signature(cls).parameters:
            if not hasattr(model, "feat_channels"):
                raise AttributeError(f"method '{name}' needs feat_channels but the model has no 'feat_channels'")
            kwargs["feat_channels"] = int(model.feat_channels)
    try:
        return cls(**kwargs)
    except TypeError as err:
        valid = [p for p in inspect.signature(cls).parameters]
        raise TypeError(f"method '{name}': {err}. Valid arguments: {', '.join(valid)}") from err
