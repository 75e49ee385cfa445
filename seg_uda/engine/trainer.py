"""The training loop: owns iteration, precision, DDP, evaluation, logging and checkpoints.

Each UDA method only computes losses (see `seg_uda.methods.base.UDAMethod`); `run_step`
is the whole per-iteration logic in the spirit of detectron2's `SimpleTrainer.run_step`.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import signal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..config import Config, save_config
from ..methods.diagnostics import step_diagnostics
from ..models.deeplabv2 import set_aspp_impl
from . import dist
from .builders import build_dataset, build_method, build_model, build_optimizers
from .checkpoint import CheckpointManager, ensure_writable_dir
from .lr import build_poly_lr
from .reference import check_reference_method, reference_advent_step
from .logging import RunLogger
from .sampling import infinite_loader, shard_indices


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN/inf; the message names the iteration and the term."""


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to_device(batch: Optional[Dict[str, Any]], device: torch.device, channels_last: bool) -> Optional[Dict[str, Any]]:
    if batch is None:
        return None
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if k == "image" and channels_last:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class Trainer:
    """Builds everything from a validated Config and trains it; `resume` may be True (last.pth) or a path."""

    def __init__(self, cfg: Config, resume: bool | str = False, work_dir: Optional[str | Path] = None,
                 progress: bool = True, batches: Optional[Tuple[Iterator[Dict[str, Any]], Iterator[Dict[str, Any]]]] = None,
                 reference: bool = False) -> None:
        """``batches``: optional (source, target) batch iterators used instead of the configured datasets
        (benchmarks feed fixed synthetic batches this way). ``reference``: train with ADVENT's own FP32 loop
        (`seg_uda.engine.reference`) instead of `run_step`'s, for speed and loss comparisons."""
        self.cfg = cfg
        self.reference = bool(reference)
        self.device = dist.init_distributed(cfg.device)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if reference and (self.world_size > 1 or cfg.schedule.amp != "none" or cfg.model.channels_last):
            raise ValueError("the reference loop is ADVENT's single-process FP32 loop: run it in one process with "
                             "schedule.amp=none and model.channels_last=false (tools/train.py --reference sets both)")
        self.is_main = self.rank == 0
        self.show_progress = progress
        self.work_dir = Path(work_dir or cfg.work_dir or Path("runs") / cfg.name)
        if self.is_main:  # fail on an unusable output path now, not at the first checkpoint
            ensure_writable_dir(self.work_dir / "checkpoints")
        self.amp = cfg.schedule.amp
        if self.amp == "fp16" and self.device.type != "cuda":
            raise ValueError("schedule.amp=fp16 needs CUDA; use 'bf16' on the CPU")
        if cfg.deterministic and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True

        seed_all(cfg.seed)  # identical initial weights on every rank
        self.model = build_model(cfg).to(self.device)
        if cfg.model.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.method = build_method(cfg, self.model).to(self.device)
        if reference:
            check_reference_method(self.method)
            set_aspp_impl(self.model, "conv")  # the paper code's per-branch dilated convolutions
        self.optimizer, self.d_optimizer = build_optimizers(cfg, self.model, self.method)
        self.scheduler = build_poly_lr(cfg, self.optimizer, self.d_optimizer)  # D too when optim.disc_poly
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        self.iteration = 0
        self.nonfinite_skips = 0
        self.last_diagnostics: Optional[Dict[str, Any]] = None  # set by run_step every schedule.diagnostics_interval
        self.ckpt = CheckpointManager(self.work_dir / "checkpoints", cfg.schedule.keep_last)
        self.resumed_from: Optional[Path] = None
        if resume:
            self._resume(None if resume is True else resume)

        self.train_model: nn.Module = self.model
        if self.world_size > 1:
            if cfg.model.bn_policy == "sync":
                if self.device.type != "cuda":  # DDP rejects SyncBatchNorm on CPU modules
                    raise ValueError("model.bn_policy=sync needs CUDA (SyncBatchNorm is GPU-only under DDP); "
                                     "use 'frozen' or 'train' for multi-process CPU runs")
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        if batches is not None:
            self.source_iter, self.target_iter = batches
        else:
            self.source_iter = self._loader("source") if self.method.uses_source else None
            self.target_iter = (self._loader("target") if (self.method.uses_target or self.method.uses_target_labels)
                                else None)
        self.val_set = build_dataset(cfg, "val") if cfg.data.val is not None else None
        self._stop_signal: Optional[int] = None

    # ------------------------------------------------------------------ data
    def _loader(self, role: str) -> Iterator[Dict[str, Any]]:
        cfg = self.cfg
        with_labels = self.method.uses_target_labels if role == "target" else None
        ds = build_dataset(cfg, role, with_labels=with_labels)
        seed = cfg.seed * 2 + (0 if role == "source" else 1)  # distinct streams per domain
        return infinite_loader(ds, cfg.data.batch_size, seed, self.rank, self.world_size,
                               start_batch=self.iteration, num_workers=cfg.data.num_workers)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # ------------------------------------------------------------------ one iteration
    def run_step(self) -> Dict[str, float]:
        """One iteration: segmenter (generator) update, then discriminator update."""
        cfg, it = self.cfg, self.iteration
        progress = it / cfg.schedule.max_iters
        source = _to_device(next(self.source_iter), self.device, cfg.model.channels_last) if self.source_iter is not None else None
        target = _to_device(next(self.target_iter), self.device, cfg.model.channels_last) if self.target_iter is not None else None
        if self.reference:  # ADVENT's loop: FP32, one backward per loss group (see seg_uda.engine.reference)
            return reference_advent_step(self, source, target)
        self.scheduler.set_iteration(it)
        self.model.train()
        self.method.train()

        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            losses, cache = self.method.generator_step(self.train_model, source, target, progress)
        values = self._check_finite(it, losses)
        if values is None:
            return {}
        if cfg.schedule.diagnostics_interval and (it + 1) % cfg.schedule.diagnostics_interval == 0:
            self.last_diagnostics = step_diagnostics(self.model, self.method, losses, cache)  # before backward
        self.scaler.scale(sum(losses.values())).backward()
        dist.average_gradients(list(self.method.extra_parameters()))
        self.clip_and_step(self.optimizer)

        if self.d_optimizer is not None:
            self.d_optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                d_losses = self.method.discriminator_step(cache)
            d_values = self._check_finite(it, d_losses)
            if d_values is None:
                return {}
            self.scaler.scale(sum(d_losses.values())).backward()
            dist.average_gradients(list(self.method.discriminator_parameters()))
            self.clip_and_step(self.d_optimizer)
            values.update(d_values)
        self.scaler.update()
        return values

    def clip_and_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the gradients to optim.grad_clip (unscaled first) when set, then step through the scaler."""
        if self.cfg.optim.grad_clip:
            self.scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip)
        self.scaler.step(optimizer)

    def _check_finite(self, it: int, losses: Dict[str, torch.Tensor]) -> Optional[Dict[str, float]]:
        """Loss values as floats (one host sync); a NaN/inf stops the run or skips the step."""
        if not losses:
            return {}
        values = dict(zip(losses, torch.stack([v.detach().float() for v in losses.values()]).tolist()))
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        # every rank must take the same branch, or the ranks that step would wait forever in all-reduce
        if not dist.max_over_ranks(int(bool(bad))):
            return values
        msg = f"non-finite loss at iteration {it}: " + (", ".join(f"{k}={values[k]}" for k in bad)
                                                         or "on another rank")
        if self.cfg.schedule.nonfinite == "skip":
            self.nonfinite_skips += 1
            self.optimizer.zero_grad(set_to_none=True)
            if self.d_optimizer is not None:
                self.d_optimizer.zero_grad(set_to_none=True)
            if self.is_main:
                self.logger.write(f"warning: {msg}; step skipped ({self.nonfinite_skips} so far)")
            return None
        raise NonFiniteLossError(msg + " (last good checkpoint kept; set schedule.nonfinite=skip to skip such steps)")

    # ------------------------------------------------------------------ loop
    def train(self, until: Optional[int] = None) -> Dict[str, Any]:
        """Train to schedule.max_iters (or stop early after iteration `until`, checkpointing there)."""
        cfg = self.cfg
        s = cfg.schedule
        if self.is_main:
            save_config(cfg, self.work_dir / "config.yaml")
        self.logger = RunLogger(self.work_dir, enabled=self.is_main, total_iters=s.max_iters,
                                start_iter=self.iteration, progress=self.show_progress)
        if self.resumed_from is not None and not getattr(self, "_resume_logged", False):
            # marks the restart in metrics.jsonl: later records supersede earlier ones of the same iteration
            self.logger.log("resume", self.iteration, {"checkpoint": str(self.resumed_from)})
            self._resume_logged = True
        self._install_signal_handlers()
        running: Dict[str, List[float]] = {}
        result: Dict[str, Any] = {}
        try:
            stop_at = s.max_iters if until is None else min(until, s.max_iters)
            while self.iteration < stop_at:
                values = self.run_step()
                self.iteration += 1
                for k, v in values.items():
                    running.setdefault(k, []).append(v)
                self.logger.progress(1, values)
                it = self.iteration
                if self.last_diagnostics:
                    self.logger.log("diag", it, self.last_diagnostics)
                    self.last_diagnostics = None
                if it % s.log_interval == 0 or it == s.max_iters:
                    means = {k: float(np.mean(v)) for k, v in running.items()}
                    lrs = {f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(self.optimizer.param_groups)}
                    lrs.update({"lr_disc": g["lr"] for g in (self.d_optimizer.param_groups if self.d_optimizer else [])})
                    self.logger.log("train", it, {**means, **lrs, "nonfinite_skips": self.nonfinite_skips})
                    running.clear()
                if s.image_log_interval and it % s.image_log_interval == 0:
                    self._log_images(it)
                if s.eval_interval and it % s.eval_interval == 0 and it != s.max_iters and self.val_set is not None:
                    self._log_eval(it, self.evaluate())
                # read once (a signal between the two checks must still checkpoint), and agree over
                # ranks so that every rank stops at the same iteration instead of one hanging
                stop = dist.max_over_ranks(self._stop_signal or 0) or None
                if it % s.ckpt_interval == 0 or it == stop_at or stop is not None:
                    self.save_checkpoint()
                if stop is not None:
                    self.logger.write(f"received signal {stop}: checkpoint written at iteration {it}")
                    raise SystemExit(128 + stop)
            if self.val_set is not None and self.iteration == s.max_iters:
                result = self.evaluate()
                self._log_eval(self.iteration, result)
                if self.is_main:
                    (self.work_dir / "final_metrics.json").write_text(json.dumps(result, indent=2))
        finally:
            self._restore_signal_handlers()
            self.logger.close()
        return result

    def _log_eval(self, it: int, res: Dict[str, Any]) -> None:
        per_class = {f"iou_{k}": v for k, v in res["iou"].items() if v is not None}
        extra = {k: res[k] for k in ("miou_13", "common_miou", "private_iou", "h_score", "auroc", "ap", "fpr95")
                 if res.get(k) is not None}  # SYNTHIA's 13-class mIoU*, open-set scores
        self.logger.log("eval", it, {"mIoU": res["miou"], "pixel_acc": res["pixel_acc"], **per_class, **extra})
        self.logger.write(f"[iter {it}] val mIoU {100 * res['miou']:.2f}"
                          + ("".join(f", {k} {100 * v:.2f}" for k, v in extra.items()) if extra else ""))

    @torch.no_grad()
    def _log_images(self, it: int) -> None:
        if not self.is_main or self.val_set is None:
            return
        from ..data.labels import colorize

        sample = self.val_set[0]
        logits = self.predict(sample["image"][None], tuple(sample["label"].shape[-2:]))
        pred = logits.argmax(1)[0].cpu().numpy()
        pal = getattr(self.val_set, "palette", None)  # open-set: compacted known classes + unknown
        self.logger.image("val/prediction", it, colorize(pred, pal) if pal else colorize(pred))
        self.logger.image("val/ground_truth", it, colorize(sample["label"].numpy(), pal) if pal else colorize(sample["label"].numpy()))

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, image: torch.Tensor, out_size: tuple) -> torch.Tensor:
        from ..evaluation.inference import predict_logits

        self.model.eval()
        with self.autocast():
            x = image.to(self.device)
            if self.cfg.model.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = predict_logits(self.model, x, out_size=out_size)
        self.model.train()
        return logits.float()

    @torch.no_grad()
    def evaluate(self) -> Dict[str, Any]:
        """Sharded evaluation of data.val at label resolution (confusions summed over ranks; SYNTHIA: miou_16/13)."""
        from ..evaluation import ConfusionMatrix
        from ..evaluation.runner import metrics_dict

        assert self.val_set is not None
        if self.cfg.data.openset.enabled:  # K+1 classes (last = unknown), Common / Private / H, AUROC ...
            from ..openset.evaluate import evaluate_openset
            from .builders import num_known_classes

            self.model.eval()
            try:
                return evaluate_openset([self.model], self.val_set, num_known_classes(self.cfg),
                                        class_names=self.class_names(), amp=self.amp,
                                        max_images=self.cfg.data.max_val_images,
                                        num_workers=min(self.cfg.data.num_workers, 2))
            finally:
                self.model.train()
        cm = ConfusionMatrix(self.cfg.data.num_classes)
        idx = shard_indices(len(self.val_set), self.rank, self.world_size, self.cfg.data.max_val_images)
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.val_set, idx), batch_size=1,
                                             num_workers=min(self.cfg.data.num_workers, 2))
        for batch in loader:
            label = batch["label"]
            logits = self.predict(batch["image"], tuple(label.shape[-2:]))
            cm.update(logits.argmax(1).cpu(), label)
        cm.reduce_from_all_processes()
        return metrics_dict(cm.compute(class_names=self.class_names()), self.cfg.data.num_classes)

    def class_names(self) -> List[str]:
        names = getattr(self.val_set, "class_names", None)
        if names is None:
            from ..data.labels import class_names

            names = class_names(self.cfg.data.num_classes)
        return list(names)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "model": self.model.state_dict(),
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else None,
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
            "nonfinite_skips": self.nonfinite_skips,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
                "python": random.getstate(),
            },
            "config": self.cfg.to_dict(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.d_optimizer is not None and state.get("d_optimizer"):
            self.d_optimizer.load_state_dict(state["d_optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.nonfinite_skips = int(state.get("nonfinite_skips", 0))
        rng = state.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "numpy" in rng:
            n = rng["numpy"]
            np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
        if "python" in rng:
            py = rng["python"]
            random.setstate((py[0], tuple(py[1]), py[2]))

    def save_checkpoint(self) -> Optional[Path]:
        if not self.is_main:
            return None
        return self.ckpt.save(self.state_dict(), self.iteration)

    def _resume(self, path: Optional[str]) -> None:
        found = self.ckpt.load_latest(path)
        if found is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {self.ckpt.dir}")
        state, self.resumed_from = found
        self.load_state_dict(state)

    # ------------------------------------------------------------------ signals
    def _install_signal_handlers(self) -> None:
        self._old_handlers = {}

        def handler(signum: int, frame: Any) -> None:
            self._stop_signal = signum

        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old_handlers[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread
            self._old_handlers = {}

    def _restore_signal_handlers(self) -> None:
        for sig, h in getattr(self, "_old_handlers", {}).items():
            signal.signal(sig, h)
