"""Helpers shared by the benchmarks: device and synchronisation, peak RSS, aligned tables and their JSON/Markdown."""
from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from seg_uda.runtime.environment import cpu_info


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; other names as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def print_table(title: str, rows: List[Dict[str, Any]], cols: Sequence[tuple]) -> str:
    """Print rows as an aligned table and return it as Markdown."""
    head = [c[0] for c in cols]
    cells = [[(c[2].format(r[c[1]]) if r.get(c[1]) is not None else "-") for c in cols] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(head)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    md = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(md) + "\n"


def save_table(out: Optional[str], name: str, payload: Dict[str, Any], markdown: str) -> None:
    """Print the machine line of ``payload["env"]`` (`environment`), then write OUT/NAME.json and OUT/NAME.md with
    that line under the tables (nothing written when ``out`` is empty)."""
    if payload.get("env"):
        line = machine_line(payload["env"])
        print(line)
        markdown = f"{markdown}\n{line}\n"
    if not out:
        return
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (d / f"{name}.md").write_text(markdown)
    print(f"saved {d / (name + '.json')} and {d / (name + '.md')}")


def environment(threads: int, device: torch.device) -> Dict[str, Any]:
    """What a saved table was measured on: versions, threads, load, device and the command line."""
    cpu, isa = cpu_info()
    env = {"torch": torch.__version__, "threads": threads, "cpu": cpu, "cpu_isa": list(isa),
           "cpu_count": os.cpu_count(), "device": str(device), "loadavg_1min": round(os.getloadavg()[0], 2),
           "command": " ".join(sys.argv)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def machine_line(env: Dict[str, Any]) -> str:
    """One line naming what an `environment` was: CPU model, the flags that change kernels, CPUs, threads, GPU."""
    line = (f"machine: {env['cpu']} ({', '.join(env['cpu_isa']) or 'no avx2/avx512/amx flags'}), "
            f"{env['cpu_count']} CPUs, {env['threads']} threads")
    return line + (f", GPU {env['gpu']}" if env.get("gpu") else "")
