"""The training loop: iteration, precision, DDP and state; logging, validation, checkpoints and signals are hooks.

Each UDA method only computes losses (`seg_uda.methods.base.UDAMethod`); `run_step` is the whole per-iteration
logic, in the spirit of detectron2's `SimpleTrainer.run_step`, and `train` calls it and the hooks.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

import torch

from ..builders import build_dataset, build_method, build_model, build_optimizers, build_source_sampler
from ..config import Config
from ..evaluation.checkpoint_model import init_model_from
from ..evaluation.inference import autocast_context
from ..methods.diagnostics import step_diagnostics
from ..runtime import dist
from ..runtime.checkpoint import CheckpointManager, ensure_writable_dir
from ..runtime.compile import compile_module
from ..runtime.sampling import infinite_loader
from .hooks import HookBase, default_hooks, validate
from .lr import build_poly_lr
from .state import load_trainer_state, seed_all, trainer_state

Batch = Dict[str, Any]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN/inf; the message names the iteration and the term."""


class Trainer:
    """Builds everything from a validated Config and trains it; `resume` may be True (last.pth) or a path.
    ``hooks`` replaces `default_hooks` (subclasses may also override `build_loader` or `run_step`)."""

    def __init__(self, cfg: Config, resume: bool | str = False, work_dir: Optional[str | Path] = None,
                 progress: bool = True, hooks: Optional[Sequence[HookBase]] = None) -> None:
        self.cfg, self.amp = cfg, cfg.schedule.amp
        self.device = dist.init_distributed(cfg.device)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.work_dir = Path(work_dir or cfg.work_dir or Path("runs") / cfg.name)
        if self.is_main:  # fail on an unusable output path now, not at the first checkpoint
            ensure_writable_dir(self.work_dir / "checkpoints")
        if self.amp == "fp16" and self.device.type != "cuda":
            raise ValueError("schedule.amp=fp16 needs CUDA; use 'bf16' on the CPU")
        if cfg.deterministic and self.device.type == "cuda":
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        seed_all(cfg.seed)  # identical initial weights on every rank
        self.model = build_model(cfg)
        if cfg.model.init_from and not resume:  # before the method, which may copy the model (a mean teacher)
            init_model_from(self.model, cfg.model.init_from, cfg.data.num_classes)
            if self.is_main:
                print(f"model: weights from {cfg.model.init_from} (model.init_from)", flush=True)
        self.model = self.model.to(self.device)
        self.method = build_method(cfg, self.model).to(self.device)
        if cfg.model.channels_last:  # the method's modules too: ADVENT's D ran 1.7x faster in bf16 (docs/speed.md)
            self.model = self.model.to(memory_format=torch.channels_last)
            self.method = self.method.to(memory_format=torch.channels_last)
        self.optimizer, self.d_optimizer = build_optimizers(cfg, self.model, self.method)
        self.scheduler = build_poly_lr(cfg, self.optimizer, self.d_optimizer)  # D too when optim.disc_poly
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        self.iteration = self.nonfinite_skips = 0
        self.stop_at, self.last_saved_iteration = cfg.schedule.max_iters, -1
        self.last_diagnostics: Optional[Dict[str, Any]] = None  # set by run_step every schedule.diagnostics_interval
        self.result: Dict[str, Any] = {}  # the final validation metrics
        self.logger: Any = None  # the run log, opened by the RunLogging hook
        self.ckpt = CheckpointManager(self.work_dir / "checkpoints", cfg.schedule.keep_last)
        self.resumed_from: Optional[Path] = None
        if resume:
            found = self.ckpt.load_latest(None if resume is True else resume)
            if found is None:
                raise FileNotFoundError(f"--resume: no checkpoint in {self.ckpt.dir}")
            state, self.resumed_from = found
            self.load_state_dict(state)
        self.train_model = dist.wrap_ddp(self.model, cfg.model.bn_policy, self.device)
        if self.train_model is not self.model and cfg.model.bn_policy == "sync":
            self.model = self.train_model.module  # the SyncBatchNorm copy is the model trained and saved
        if cfg.schedule.compile:  # the forward used for training only; evaluation and checkpoints use self.model
            self.train_model = compile_module(self.train_model, cfg.schedule.compile_backend)

        m = self.method
        self.source_iter = self.build_loader("source") if m.uses_source else None
        self.target_iter = self.build_loader("target") if m.uses_target or m.uses_target_labels else None
        self.val_set = build_dataset(cfg, "val") if cfg.data.val is not None else None
        self.hooks = list(default_hooks(cfg, progress) if hooks is None else hooks)
        for h in self.hooks:
            h.trainer = self

    def build_loader(self, role: str) -> Iterator[Batch]:
        """An endless batch stream of data.<role> ('source' / 'target'), resuming at the current iteration."""
        with_labels = self.method.uses_target_labels if role == "target" else None
        ds = build_dataset(self.cfg, role, with_labels=with_labels)
        seed, b = self.cfg.seed * 2 + (0 if role == "source" else 1), self.cfg.data.batch_size  # a stream per domain
        sampler = (build_source_sampler(self.cfg, ds, seed, self.rank, self.world_size, start=self.iteration * b)
                   if role == "source" else None)  # data.rcs_temperature: rare-class sampling
        return infinite_loader(ds, b, seed, self.rank, self.world_size, start_batch=self.iteration,
                               num_workers=self.cfg.data.num_workers, sampler=sampler)

    def next_batches(self) -> tuple:
        """The next (source, target) batches on the device (None for a domain the method does not read)."""
        def fetch(it: Optional[Iterator[Batch]]) -> Optional[Batch]:
            if it is None:
                return None
            batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                     for k, v in next(it).items()}
            if self.cfg.model.channels_last:
                batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
            return batch
        return fetch(self.source_iter), fetch(self.target_iter)

    def run_step(self) -> Dict[str, float]:
        """One iteration: segmenter (generator) update, then discriminator update."""
        cfg, it = self.cfg, self.iteration
        source, target = self.next_batches()
        self.scheduler.set_iteration(it)
        self.model.train()
        self.method.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.amp):
            losses, cache = self.method.generator_step(self.train_model, source, target, it / cfg.schedule.max_iters)
        values = self.check_finite(losses)
        if values is None:
            return {}
        if cfg.schedule.diagnostics_interval and (it + 1) % cfg.schedule.diagnostics_interval == 0:
            self.last_diagnostics = step_diagnostics(self.model, self.method, losses, cache)  # before backward
        self.scaler.scale(sum(losses.values())).backward()
        dist.average_gradients(list(self.method.extra_parameters()))
        self.clip_and_step(self.optimizer)
        self.method.after_optimizer_step(self.model, it)  # e.g. a mean teacher's EMA update
        if self.d_optimizer is not None:
            self.d_optimizer.zero_grad(set_to_none=True)
            with autocast_context(self.device, self.amp):
                d_losses = self.method.discriminator_step(cache)
            d_values = self.check_finite(d_losses)
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

    def check_finite(self, losses: Dict[str, torch.Tensor]) -> Optional[Dict[str, float]]:
        """Loss values as floats (one host sync); a NaN/inf stops the run or, with schedule.nonfinite=skip,
        skips the step (returns None). Every rank takes the same branch, or the others would hang."""
        if not losses:
            return {}
        values = dict(zip(losses, torch.stack([v.detach().float() for v in losses.values()]).tolist()))
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if not dist.max_over_ranks(int(bool(bad))):
            return values
        msg = (f"non-finite loss at iteration {self.iteration}: "
               + (", ".join(f"{k}={values[k]}" for k in bad) or "on another rank"))
        if self.cfg.schedule.nonfinite != "skip":
            raise NonFiniteLossError(f"{msg} (last good checkpoint kept; schedule.nonfinite=skip skips such steps)")
        self.nonfinite_skips += 1
        for opt in filter(None, (self.optimizer, self.d_optimizer)):
            opt.zero_grad(set_to_none=True)
        if self.is_main and self.logger is not None:
            self.logger.write(f"warning: {msg}; step skipped ({self.nonfinite_skips} so far)")
        return None

    def train(self, until: Optional[int] = None) -> Dict[str, Any]:
        """Train to schedule.max_iters (or stop after iteration `until`, checkpointing there); returns the final
        validation metrics (empty when there is no data.val or training stopped early)."""
        self.stop_at = self.cfg.schedule.max_iters if until is None else min(until, self.cfg.schedule.max_iters)
        try:
            for h in self.hooks:
                h.before_train()
            while self.iteration < self.stop_at:
                values = self.run_step()
                self.iteration += 1
                for h in self.hooks:
                    h.after_step(values)
            if self.iteration == self.cfg.schedule.max_iters:
                for h in self.hooks:
                    h.after_train()
        finally:
            for h in self.hooks:
                h.close()
        return self.result

    def evaluate(self) -> Dict[str, Any]:
        """Validate the current weights on data.val (rank-sharded, reduced over ranks)."""
        assert self.val_set is not None, "no data.val configured"
        return validate(self.cfg, self.model, self.val_set, self.amp)

    def state_dict(self) -> Dict[str, Any]:
        return trainer_state(self)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        load_trainer_state(self, state)

    def save_checkpoint(self) -> Optional[Path]:
        """Write the full training state (rank 0 only)."""
        self.last_saved_iteration = self.iteration
        return self.ckpt.save(self.state_dict(), self.iteration) if self.is_main else None
