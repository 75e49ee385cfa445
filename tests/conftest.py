"""Shared test helpers: a tiny generated SynthCity (64x48 game / 64x32 real frames), fresh for each test module, and
the tiny experiment config on it (`tiny_cfg_dict`)."""
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
