"""Train a segmenter with a UDA method: `python tools/train.py CONFIG [key.sub=value ...] [--resume]`.

Distributed: `torchrun --nproc_per_node=N tools/train.py CONFIG`.
"""
from __future__ import annotations

import argparse
import sys

from seg_uda.cli import one_line
from seg_uda.config import ConfigError, load_config


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="experiment YAML under configs/")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. optim.lr=1e-3 schedule.max_iters=100")
    p.add_argument("--work-dir", default=None, help="output folder (default: work_dir from the config, or runs/<name>)")
    p.add_argument("--resume", nargs="?", const=True, default=False,
                   help="resume from WORK_DIR/checkpoints/last.pth, or from the given checkpoint")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    p.add_argument("--reference", action="store_true",
                   help="ADVENT's own loop: FP32, NCHW, per-branch classifier convolutions, separate source / target / "
                        "discriminator backward passes "
                        "(source-only and ADVENT methods; single process), for speed and loss comparisons")
    return p.parse_intermixed_args(argv)  # overrides may follow options such as --work-dir


def main(argv=None) -> int:
    args = parse_args(argv)
    from seg_uda.runtime.allocator import keep_freed_memory

    keep_freed_memory()  # before the first tensor: steps stop page-faulting their maps in (same numbers)
    try:
        overrides = list(args.overrides)
        if args.reference:  # the paper's precision and layout; later explicit overrides would contradict it
            overrides += ["schedule.amp=none", "model.channels_last=false"]
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    from seg_uda.data import DatasetError
    from seg_uda.runtime.checkpoint import CheckpointError
    from seg_uda.runtime import dist
    from seg_uda.benchmarks.reference import ReferenceTrainer
    from seg_uda.engine.trainer import Trainer

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    try:
        trainer_class = ReferenceTrainer if args.reference else Trainer
        trainer = trainer_class(cfg, resume=args.resume, work_dir=args.work_dir, progress=not args.no_progress)
        result = trainer.train()
        if result and trainer.is_main:
            print(f"final val mIoU: {100 * result['miou']:.2f}  ({trainer.work_dir / 'final_metrics.json'})")
        # every rank done (rank 0 writes the final files) before the process group is destroyed: a gloo rank whose
        # peer tore its connections down first could abort at exit ("terminate called without an active exception")
        dist.barrier()
    except DatasetError as e:  # e.g. a missing data.<role>.root: one line naming the path, like a config error
        print(f"dataset error: {one_line(e)}", file=sys.stderr)
        return 2
    except CheckpointError as e:  # model.init_from or --resume: a missing, truncated or ill-fitting file, named
        print(f"checkpoint error: {one_line(e)}", file=sys.stderr)
        return 2
    finally:
        dist.cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
