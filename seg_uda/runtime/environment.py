"""What machine a run ran on (CPU model and ISA, threads, library versions), saved beside its config.

A run's numbers reproduce bit for bit only on the same CPU model at the same thread count (oneDNN picks its kernels
per CPU), so every run records both.
"""
from __future__ import annotations

import functools
import json
import os
import platform
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch

__all__ = ["cpu_info", "parse_cpuinfo", "describe_environment", "record_environment"]

_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def parse_cpuinfo(text: str) -> Tuple[str, List[str]]:
    """The first CPU's model name (``unknown`` if absent) and which of the ISA flags that change kernels it has,
    from the text of Linux ``/proc/cpuinfo``."""
    name, flags = "unknown", None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown":
            name = value.strip() or "unknown"
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
        if name != "unknown" and flags is not None:
            break
    return name, [f for f in _ISA_FLAGS if f in (flags or ())]


@functools.lru_cache(maxsize=None)
def cpu_info() -> Tuple[str, Tuple[str, ...]]:
    """This machine's CPU model name and ISA flags (`parse_cpuinfo`); the platform's processor name and no flags
    where ``/proc/cpuinfo`` cannot be read."""
    try:
        name, isa = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        name, isa = "unknown", []
    return (platform.processor() or "unknown") if name == "unknown" else name, tuple(isa)


def describe_environment() -> Dict[str, Any]:
    """CPU model and ISA flags, torch's thread count, world size, versions, and the GPU when CUDA is in use."""
    cpu, isa = cpu_info()
    info: Dict[str, Any] = {
        "cpu": cpu, "cpu_isa": list(isa), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def record_environment(path: str | Path, **extra: Any) -> None:
    """Append this process's environment (plus ``extra``, e.g. the iteration it starts at) to the JSON list at
    ``path``, so a resumed run keeps a record per part."""
    path = Path(path)
    records = json.loads(path.read_text()) if path.is_file() else []
    records.append({**describe_environment(), **extra})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1) + "\n")
