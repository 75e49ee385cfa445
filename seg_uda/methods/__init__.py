"""UDA methods behind one `UDAMethod` interface; every module of this package is imported here, so a new method
file registers itself in `METHODS` without editing any other file (docs/methods.md).

    method = build_method("advent", num_classes=19, multi_level=True)
    losses, cache = method.generator_step(model, source, target, progress)   # sum(losses.values()).backward()
    d_losses = method.discriminator_step(cache)                             # sum(d_losses.values()).backward()
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from torch import nn

from .base import METHODS, SOURCE_LABEL, TARGET_LABEL, UDAMethod, frozen

for _module in pkgutil.iter_modules(__path__):  # method files register themselves on import
    importlib.import_module(f"{__name__}.{_module.name}")

from . import losses  # noqa: E402
from .advent import AdvEnt, AdvEntMinEnt, MinEnt  # noqa: E402
from .dann import DANN  # noqa: E402
from .osbp import OSBP, OSBPAdvEnt, OSBPMinEnt, osbp_unknown_loss  # noqa: E402,F401
from .supervised import Oracle, SourceOnly  # noqa: E402
from seg_uda.models.discriminator import DomainClassifier  # noqa: E402  (moved to seg_uda.models; re-exported)
from seg_uda.models.grl import grl_schedule  # noqa: E402

__all__ = [
    "METHODS", "build_method", "UDAMethod", "frozen", "SOURCE_LABEL", "TARGET_LABEL", "losses",
    "SourceOnly", "Oracle", "AdvEnt", "MinEnt", "AdvEntMinEnt", "DANN", "OSBP", "DomainClassifier", "grl_schedule",
]


def build_method(name: str, *, model: nn.Module | None = None, **kwargs: Any) -> UDAMethod:
    """Build the registered method `name` from keyword arguments (unknown names raise a KeyError listing valid ones).

    With `model`, what the method declares it takes from the model (`UDAMethod.model_args`: multi_level,
    feat_channels) fills the arguments not passed.
    """
    factory = METHODS.get(name)
    kwargs = {**(factory.model_args(model) if model is not None else {}), **kwargs}
    try:
        return factory(**kwargs)
    except TypeError as err:  # the signature only lists the valid arguments here; nothing is injected from it
        valid = [p for p in inspect.signature(factory).parameters]
        raise TypeError(f"method '{name}': {err}. Valid arguments: {', '.join(valid)}") from err
