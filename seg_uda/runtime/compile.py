"""`schedule.compile`: wrap the training forward in `torch.compile`, falling back to eager execution (dynamo logs
a warning) where the backend cannot compile a graph, so a run never fails only because compilation does."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["compile_module"]


def compile_module(module: nn.Module, backend: str = "inductor") -> nn.Module:
    """``torch.compile(module)`` sharing its parameters (state dicts and checkpoints keep using ``module``)."""
    import torch._dynamo as dynamo

    dynamo.config.suppress_errors = True  # a graph the backend rejects runs eagerly instead of raising
    try:
        return torch.compile(module, backend=backend)
    except Exception as exc:  # e.g. an unknown backend name
        raise ValueError(f"schedule.compile_backend={backend!r}: {exc}") from exc
