"""What machine a run ran on (CPU model and ISA, threads, library versions), saved beside its config.

A run's numbers reproduce bit for bit only on the same CPU model at the same thread count (oneDNN picks its kernels
per CPU), so every run records both.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Dict

import torch

__all__ = ["describe_environment", "record_environment"]

_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _cpuinfo() -> tuple[str, list[str]]:
    """The CPU model name and which of the ISA flags that change kernels it has (Linux /proc/cpuinfo)."""
    name, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if name != "unknown" and flags:
                break
    except OSError:
        pass
    return name, [f for f in _ISA_FLAGS if f in flags]


def describe_environment() -> Dict[str, Any]:
    """CPU model and ISA flags, torch's thread count, world size, versions, and the GPU when CUDA is in use."""
    cpu, isa = _cpuinfo()
    info: Dict[str, Any] = {
        "cpu": cpu, "cpu_isa": isa, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
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
