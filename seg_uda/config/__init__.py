"""Experiment configuration: YAML with `_base_` inheritance, typed validation, CLI overrides."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import yaml

from .errors import ConfigError
from .loader import deep_merge, load_config_dict, parse_overrides
from .schema import (
    Config,
    DataConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    ScheduleConfig,
    build_dataclass,
    validate_components,
)

__all__ = [
    "Config", "ConfigError", "DataConfig", "MethodConfig", "ModelConfig", "OptimConfig",
    "ScheduleConfig", "config_from_dict", "load_config", "save_config",
]


def config_from_dict(data: Mapping[str, Any], validate: bool = True) -> Config:
    """Build and (by default) fully validate a Config from a plain nested dict."""
    cfg = build_dataclass(Config, data)
    return validate_components(cfg) if validate else cfg


def load_config(path: str | Path, overrides: Optional[Iterable[str]] = None, validate: bool = True) -> Config:
    """Load `path` (resolving `_base_`), apply `key.sub=value` overrides, and validate."""
    data = load_config_dict(path)
    if overrides:
        data = deep_merge(data, parse_overrides(overrides))
    try:
        return config_from_dict(data, validate=validate)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (what the run actually used), next to its checkpoints."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)


def resolved_dict(cfg: Config) -> Dict[str, Any]:
    """The resolved config as a plain dict (what is stored inside checkpoints)."""
    return cfg.to_dict()
