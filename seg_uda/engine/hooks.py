"""Everything the training loop does besides stepping, as hooks (detectron2's ``HookBase``): the run log,
image logging, validation, checkpoints and stop signals. `default_hooks` lists them in the order they run."""
from __future__ import annotations

import json
import signal
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..builders import num_known_classes
from ..config import Config, save_config
from ..data.labels import class_names as builtin_class_names, colorize
from ..evaluation.inference import predict_sample_probs
from ..evaluation.runner import SegmentationAccumulator, model_device, run_evaluation
from ..openset.evaluate import OpenSetAccumulator
from ..runtime import dist
from ..runtime.environment import record_environment
from .logging import RunLogger

#: extra result keys logged beside mIoU: SYNTHIA's 13-class mIoU*, the open-set scores
EXTRA_EVAL_KEYS = ("miou_13", "common_miou", "private_iou", "h_score", "auroc", "ap", "fpr95")


class HookBase:
    """Called by `Trainer.train`: ``before_train``, ``after_step(values)`` after every iteration (the trainer's
    ``iteration`` already counts it), ``after_train`` once the schedule is complete, and ``close`` always."""

    trainer: Any  # the `Trainer` that registered this hook

    def before_train(self) -> None:
        pass

    def after_step(self, values: Dict[str, float]) -> None:
        pass

    def after_train(self) -> None:
        pass

    def close(self) -> None:
        pass


def dataset_class_names(cfg: Config, dataset: Any) -> List[str]:
    """The dataset's class names (open-set: compacted known classes + unknown), else the built-in ones."""
    names = getattr(dataset, "class_names", None)
    return list(names if names is not None else builtin_class_names(cfg.data.num_classes))


@torch.no_grad()
def validate(cfg: Config, model: nn.Module, dataset: Any, amp: Optional[str] = None) -> Dict[str, Any]:
    """Score ``model`` on ``dataset`` with the one evaluation loop: closed-set metrics (SYNTHIA: miou_16 / 13),
    or, when data.openset is enabled, K+1 classes (last = unknown), Common / Private / H, AUROC ..."""
    device = model_device([model])
    names = dataset_class_names(cfg, dataset)
    if cfg.data.openset.enabled:
        acc: Any = OpenSetAccumulator(num_known_classes(cfg), class_names=names, device=device)
    else:
        acc = SegmentationAccumulator(cfg.data.num_classes, names, device=device)
    run_evaluation([model], dataset, [acc], amp=amp, max_images=cfg.data.max_val_images,
                   num_workers=min(cfg.data.num_workers, 2))
    return acc.result()


class RunLogging(HookBase):
    """Saves the resolved config, opens the run log (metrics.jsonl, TensorBoard, progress bar) as
    ``trainer.logger``, and logs diagnostics and every ``interval`` iterations the mean losses and the LRs."""

    def __init__(self, interval: int, progress: bool = True) -> None:
        self.interval, self.progress = interval, progress
        self.running: Dict[str, List[float]] = {}
        self.resume_logged = False

    def before_train(self) -> None:
        t = self.trainer
        if t.is_main:
            save_config(t.cfg, t.work_dir / "config.yaml")
            record_environment(t.work_dir / "environment.json", start_iter=t.iteration)
        t.logger = RunLogger(t.work_dir, enabled=t.is_main, total_iters=t.cfg.schedule.max_iters,
                             start_iter=t.iteration, progress=self.progress)
        if t.resumed_from is not None and not self.resume_logged:  # later records supersede earlier ones
            t.logger.log("resume", t.iteration, {"checkpoint": str(t.resumed_from)})
            self.resume_logged = True

    def after_step(self, values: Dict[str, float]) -> None:
        t, it = self.trainer, self.trainer.iteration
        for k, v in values.items():
            self.running.setdefault(k, []).append(v)
        t.logger.progress(1, values)
        if t.last_diagnostics:
            t.logger.log("diag", it, t.last_diagnostics)
            t.last_diagnostics = None
        if it % self.interval == 0 or it == t.cfg.schedule.max_iters:
            means = {k: float(np.mean(v)) for k, v in self.running.items()}
            lrs = {f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(t.optimizer.param_groups)}
            lrs.update({"lr_disc": g["lr"] for g in (t.d_optimizer.param_groups if t.d_optimizer else [])})
            t.logger.log("train", it, {**means, **lrs, "nonfinite_skips": t.nonfinite_skips})
            self.running.clear()

    def close(self) -> None:
        if getattr(self.trainer, "logger", None) is not None:
            self.trainer.logger.close()


class ImageLogging(HookBase):
    """Every ``interval`` iterations: the first validation image's prediction and ground truth, colorized."""

    def __init__(self, interval: int) -> None:
        self.interval = interval

    @torch.no_grad()
    def after_step(self, values: Dict[str, float]) -> None:
        t = self.trainer
        if not self.interval or t.iteration % self.interval or not t.is_main or t.val_set is None:
            return
        sample = t.val_set[0]
        label = sample["label"]
        probs = predict_sample_probs([t.model], sample["image"][None], tuple(label.shape[-2:]), amp=t.amp)
        pal = getattr(t.val_set, "palette", None)  # open-set: compacted known classes + unknown
        paint = (lambda x: colorize(x, pal)) if pal else colorize
        t.logger.image("val/prediction", t.iteration, paint(probs.argmax(1)[0].cpu().numpy()))
        t.logger.image("val/ground_truth", t.iteration, paint(label.numpy()))


class Evaluation(HookBase):
    """Validates every ``interval`` iterations (0: never) and after the last one, where the result is also
    written to ``final_metrics.json`` and kept as ``trainer.result``."""

    def __init__(self, interval: int) -> None:
        self.interval = interval

    def after_step(self, values: Dict[str, float]) -> None:
        t = self.trainer
        it = t.iteration
        if self.interval and it % self.interval == 0 and it != t.cfg.schedule.max_iters and t.val_set is not None:
            self.log(t.evaluate())

    def after_train(self) -> None:
        t = self.trainer
        if t.val_set is None or t.iteration != t.cfg.schedule.max_iters:
            return
        t.result = t.evaluate()
        self.log(t.result)
        if t.is_main:
            (t.work_dir / "final_metrics.json").write_text(json.dumps(t.result, indent=2))
        for name, model in t.method.eval_models().items():  # e.g. a mean teacher, reported under its name
            res = validate(t.cfg, model, t.val_set, t.amp)
            self.log(res, name)
            if t.is_main:
                (t.work_dir / f"final_metrics_{name}.json").write_text(json.dumps(res, indent=2))

    def log(self, res: Dict[str, Any], name: str = "") -> None:
        t = self.trainer
        per_class = {f"iou_{k}": v for k, v in res["iou"].items() if v is not None}
        extra = {k: res[k] for k in EXTRA_EVAL_KEYS if res.get(k) is not None}
        kind, label = (f"eval_{name}", f" ({name})") if name else ("eval", "")
        t.logger.log(kind, t.iteration, {"mIoU": res["miou"], "pixel_acc": res["pixel_acc"], **per_class, **extra})
        t.logger.write(f"[iter {t.iteration}] val mIoU{label} {100 * res['miou']:.2f}"
                       + "".join(f", {k} {100 * v:.2f}" for k, v in extra.items()))


class Checkpointing(HookBase):
    """Saves ``checkpoints/iter_N.pth`` + ``last.pth`` every ``interval`` iterations (0: never) and where training
    stops."""

    def __init__(self, interval: int) -> None:
        self.interval = interval

    def after_step(self, values: Dict[str, float]) -> None:
        t = self.trainer
        if (self.interval and t.iteration % self.interval == 0) or t.iteration == t.stop_at:
            t.save_checkpoint()


class StopOnSignal(HookBase):
    """SIGTERM / SIGINT (a preempted job, Ctrl-C) stop the run after the current iteration with a checkpoint
    and exit code 128 + signal. Ranks agree on the signal, so that they all stop at the same iteration."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received = 0
        self.old_handlers: Dict[int, Any] = {}

    def before_train(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self.received = signum

        try:
            for sig in self.SIGNALS:
                self.old_handlers[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread
            self.old_handlers = {}

    def after_step(self, values: Dict[str, float]) -> None:
        t = self.trainer
        stop = dist.max_over_ranks(self.received)  # read once: a signal arriving later waits one iteration
        if not stop:
            return
        if t.last_saved_iteration != t.iteration:
            t.save_checkpoint()
        t.logger.write(f"received signal {stop}: checkpoint written at iteration {t.iteration}")
        raise SystemExit(128 + stop)

    def close(self) -> None:
        for sig, h in self.old_handlers.items():
            signal.signal(sig, h)
        self.old_handlers = {}


def default_hooks(cfg: Config, progress: bool = True) -> Sequence[HookBase]:
    """The standard hooks from ``cfg.schedule``, in the order they run after each iteration."""
    s = cfg.schedule
    return [RunLogging(s.log_interval, progress), ImageLogging(s.image_log_interval), Evaluation(s.eval_interval),
            Checkpointing(s.ckpt_interval), StopOnSignal()]
