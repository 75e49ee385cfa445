"""What a training checkpoint holds (weights, optimisers, counters, random state) and the process-wide seeding,
so that a resumed run continues bit for bit."""
from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (identical initial weights on every rank)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> Dict[str, Any]:
    """torch / NumPy / Python generator states as tensors and plain values (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(rng: Dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (missing parts are left as they are)."""
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "numpy" in rng:
        n = rng["numpy"]
        np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    if "python" in rng:
        py = rng["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))


def trainer_state(trainer: Any) -> Dict[str, Any]:
    """The full training state of a `Trainer` (what ``checkpoints/*.pth`` hold), with the resolved config."""
    t = trainer
    return {"model": t.model.state_dict(), "method": t.method.state_dict(), "optimizer": t.optimizer.state_dict(),
            "d_optimizer": t.d_optimizer.state_dict() if t.d_optimizer else None, "scaler": t.scaler.state_dict(),
            "iteration": t.iteration, "nonfinite_skips": t.nonfinite_skips, "rng": rng_state(),
            "config": t.cfg.to_dict()}


def load_trainer_state(trainer: Any, state: Dict[str, Any]) -> None:
    """Restore what :func:`trainer_state` saved into ``trainer``."""
    t = trainer
    t.model.load_state_dict(state["model"])
    t.method.load_state_dict(state["method"])
    t.optimizer.load_state_dict(state["optimizer"])
    if t.d_optimizer is not None and state.get("d_optimizer"):
        t.d_optimizer.load_state_dict(state["d_optimizer"])
    if state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    t.iteration = int(state["iteration"])
    t.nonfinite_skips = int(state.get("nonfinite_skips", 0))
    set_rng_state(state.get("rng") or {})
