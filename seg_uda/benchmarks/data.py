"""Data-pipeline throughput (decode + augment + collate) per dataset role and number of loader workers."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

from .common import environment, print_table, save_table


def cmd_data(a: argparse.Namespace) -> List[Dict[str, Any]]:
    """`data`: images/s and ms/image of the configured datasets with N workers (start-up batches not timed)."""
    from seg_uda.config import load_config
    from seg_uda.builders import build_dataset
    from seg_uda.runtime.sampling import infinite_loader

    cfg = load_config(a.config, list(a.overrides))
    rows = []
    for role in a.roles:
        ds = build_dataset(cfg, role)
        for nw in a.workers:
            it = infinite_loader(ds, cfg.data.batch_size, seed=0, rank=0, world_size=1, num_workers=nw)
            for _ in range(min(3, a.batches)):  # worker start-up is not throughput
                next(it)
            t0 = time.perf_counter()
            for _ in range(a.batches):
                next(it)
            dt = time.perf_counter() - t0
            del it
            rows.append({"role": role, "workers": nw, "img_per_s": a.batches * cfg.data.batch_size / dt,
                         "ms_per_img": 1000 * dt / (a.batches * cfg.data.batch_size)})
    md = print_table(f"data pipeline: {Path(a.config).stem} (decode + augment + collate)", rows,
                     [("role", "role", "{}"), ("workers", "workers", "{}"), ("img/s", "img_per_s", "{:.1f}"),
                      ("ms/img", "ms_per_img", "{:.1f}")])
    save_table(a.out, "data_" + Path(a.config).stem, {"env": environment(torch.get_num_threads(), torch.device("cpu")),
                                                      "rows": rows}, md)
    return rows
