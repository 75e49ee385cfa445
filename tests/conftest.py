"""Shared test helpers: a tiny generated SynthCity (64x48 game / 64x32 real frames), fresh for each test module, the
tiny experiment config on it (`tiny_cfg_dict`, `tiny_cfg`), and a 2-iteration trained run (`trained`) that the tool
tests of several folders score, plot and visualize."""
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

REPO = Path(__file__).resolve().parents[1]  # the checkout's root: its tools/, configs/, docker/

TINY_SYNTHCITY = dict(seed=0, source_size=(64, 48), target_size=(64, 32), num_source=4,
                      num_target_train=4, num_target_val=2, workers=1)


def make_tiny_synthcity(out: Path) -> Path:
    """Generate the tiny SynthCity tree at `out` (under a second on one core)."""
    from seg_uda.data.synthcity import generate_synthcity

    generate_synthcity(out, **TINY_SYNTHCITY)
    return out


@pytest.fixture(scope="module")
def synthcity(tmp_path_factory) -> Path:
    """A tiny SynthCity tree; module-scoped so a module may alter its copy (fault injection) safely."""
    return make_tiny_synthcity(tmp_path_factory.mktemp("synthcity"))


def tiny_cfg_dict(root: Path, method: str = "advent", **overrides: Any) -> Dict[str, Any]:
    """The tiny experiment (DeepLab-v2 ResNet-18 without weights on the tiny SynthCity at `root`) as a plain dict;
    a dict keyword updates that section (`schedule={"max_iters": 2}`), any other replaces the top-level key."""
    root = Path(root)
    d: Dict[str, Any] = {
        "name": f"tiny_{method}", "seed": 0,
        "data": {
            "source": {"type": "gta5", "root": str(root / "game")},
            "target": {"type": "cityscapes", "root": str(root / "real"), "split": "train"},
            "val": {"type": "cityscapes", "root": str(root / "real"), "split": "val"},
            "source_size": [64, 48], "target_size": [64, 32], "val_size": [64, 32], "num_workers": 0,
        },
        "model": {"name": "deeplabv2", "encoder_name": "resnet18", "encoder_weights": None, "multi_level": True},
        "method": {"name": method},
        "optim": {"lr": 1e-3},
        "schedule": {"max_iters": 4, "eval_interval": 0, "ckpt_interval": 2, "log_interval": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(d.get(key), dict):
            d[key].update(value)
        else:
            d[key] = value
    return d


def tiny_cfg(root, method="advent", max_iters=4, **sections):
    """The shared tiny config with `max_iters` and 5 kept checkpoints; `sections` update whole sections."""
    from seg_uda.config import config_from_dict

    schedule = {"max_iters": max_iters, "keep_last": 5, **sections.pop("schedule", {})}
    return config_from_dict(tiny_cfg_dict(root, method, schedule=schedule, **sections))


def read_train_losses(work_dir):
    """The ``train`` records of a run's metrics.jsonl without their wall time (what two runs must share)."""
    recs = [json.loads(line) for line in (Path(work_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time",)} for r in recs if r["kind"] == "train"]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # for the tools run as subprocesses


def eval_cfg_dict(root):
    """The shared tiny config: source-only, 2 iterations with alignment diagnostics every iteration."""
    return tiny_cfg_dict(root, "source_only", name="tiny_eval", schedule={"max_iters": 2, "diagnostics_interval": 1})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(synthcity root, config yaml path, work dir with checkpoints/last.pth and final_metrics.json)."""
    import torch

    from seg_uda.config import config_from_dict, save_config
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("evaltool")
    root = make_tiny_synthcity(base / "synthcity")
    cfg = config_from_dict(eval_cfg_dict(root))
    save_config(cfg, base / "cfg.yaml")
    work = base / "run"
    Trainer(cfg, work_dir=work, progress=False).train()
    return root, base / "cfg.yaml", work


def load_tool(name):
    """A checkout's ``tools/<name>.py`` as a module, to call its ``main`` in-process."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _forward_backward(module, x, grad):
    """(output, input gradient, parameter gradients) of ``module`` at ``x`` for the output gradient ``grad``."""
    x = x.detach().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = module(x)
    y.backward(grad)
    return y.detach(), x.grad, [p.grad for p in module.parameters()]


@pytest.fixture
def forward_backward():
    """One forward and backward of a module: compares a convolution implementation with ``nn.Conv2d``."""
    return _forward_backward
