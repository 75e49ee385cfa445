"""YAML loading with `_base_` inheritance and `key.sub=value` command-line overrides.

Files are parsed with `yaml.safe_load` only. A file may name one or more base files under
`_base_` (paths relative to the file); bases are merged in order, then the file's own keys
are deep-merged on top. A mapping with `_delete_: true` replaces its base instead of merging.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping

import yaml

from .errors import ConfigError

class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads YAML 1.2 floats such as 1e-3 (PyYAML alone reads a string)."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def safe_load(text: str) -> Any:
    """Parse YAML text with the safe loader (no Python object tags)."""
    return yaml.load(text, Loader=SafeLoader)


BASE_KEY = "_base_"
DELETE_KEY = "_delete_"


def load_yaml(path: str | Path) -> Dict[str, Any]:
    """Parse one YAML file safely, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("r", encoding="utf-8") as f:
            data = yaml.load(f, Loader=SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML in {path}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
    """Return `base` updated recursively with `override` (neither input is modified)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and value.get(DELETE_KEY):
            out[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != DELETE_KEY}
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config_dict(path: str | Path, _stack: tuple = ()) -> Dict[str, Any]:
    """Load a config file and resolve its `_base_` chain into one plain dict."""
    path = Path(path).resolve()
    if path in _stack:
        chain = " -> ".join(str(p) for p in (*_stack, path))
        raise ConfigError(f"circular _base_ inheritance: {chain}")
    data = load_yaml(path)
    bases = data.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: '{BASE_KEY}' must be a path or a list of paths")
    merged: Dict[str, Any] = {}
    for base in bases:
        merged = deep_merge(merged, load_config_dict(path.parent / base, (*_stack, path)))
    return deep_merge(merged, data)


def parse_overrides(overrides: Iterable[str]) -> Dict[str, Any]:
    """Turn ['optim.lr=0.01', 'model.multi_level=false'] into a nested dict (values parsed as YAML)."""
    result: Dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must have the form key.sub=value")
        key, raw = item.split("=", 1)
        parts: List[str] = [p for p in key.strip().split(".")]
        if not key.strip() or any(not p for p in parts):
            raise ConfigError(f"override '{item}' has an empty key part")
        try:
            value = safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': cannot parse value: {e}") from None
        node = result
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override '{item}' conflicts with an earlier override of '{p}'")
            node = nxt
        node[parts[-1]] = value
    return result
