"""Run logging on rank 0: JSON-lines metrics, TensorBoard scalars/images and a tqdm progress bar."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch


class RunLogger:
    """Appends one JSON object per logged event to `metrics.jsonl`; mirrors scalars to TensorBoard."""

    def __init__(self, work_dir: Path, enabled: bool = True, total_iters: int = 0,
                 start_iter: int = 0, progress: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.work_dir = Path(work_dir)
        self._tb = None
        self._bar = None
        self._jsonl = None
        if not enabled:
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.work_dir / "metrics.jsonl").open("a", encoding="utf-8")
        if self._jsonl.tell() > 0 and not _ends_with_newline(self.work_dir / "metrics.jsonl"):
            self._jsonl.write("\n")  # a kill mid-write left a partial line: keep it, start a fresh one
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.work_dir / "tb"))
            except Exception:  # tensorboard missing: JSON log still works
                self._tb = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_iters, initial=start_iter, dynamic_ncols=True,
                             desc=self.work_dir.name, unit="it", mininterval=1.0)
        self._t0 = time.time()

    def log(self, kind: str, iteration: int, values: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                 for k, v in values.items()}
        record = {"kind": kind, "iter": iteration, "time": round(time.time() - self._t0, 3), **clean}
        assert self._jsonl is not None
        self._jsonl.write(json.dumps(record, default=_json_default) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in clean.items():
                if isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(f"{kind}/{k}", v, iteration)

    def image(self, tag: str, iteration: int, image_hwc_uint8: Any) -> None:
        if self.enabled and self._tb is not None:
            self._tb.add_image(tag, torch.as_tensor(image_hwc_uint8), iteration, dataformats="HWC")

    def progress(self, n: int = 1, postfix: Optional[Dict[str, float]] = None) -> None:
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def write(self, msg: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._jsonl is not None:
            self._jsonl.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)
