#!/usr/bin/env python
"""Per-rank entry point for the distributed tests: `tools/train.py`, optionally with one rank made to fail.

Run as `torchrun ... tests/runtime/dist_worker.py [--fail-rank R --fail-at I] CONFIG [train.py args]`.
With `--fail-rank R`, rank R raises `RuntimeError` when it starts iteration I, so the tests can
check that a crashing rank makes the whole job exit non-zero instead of hanging the other ranks.
`torchrun ... tests/runtime/dist_worker.py --check-seg-loss` instead compares `seg_loss` over the ranks (each with a
different number of ignored pixels) with one process holding the whole batch, value and gradient.
"""
from __future__ import annotations

import os
import sys


class InjectedRankFailure(RuntimeError):
    """The failure injected into one rank by `--fail-rank`."""


def _inject_failure(rank: int, at_iteration: int) -> None:
    """Make `Trainer.run_step` raise on `rank` once the trainer reaches `at_iteration`."""
    if int(os.environ.get("RANK", "0")) != rank:
        return
    from seg_uda.engine.trainer import Trainer

    original = Trainer.run_step

    def run_step(self):  # type: ignore[no-untyped-def]
        if self.iteration >= at_iteration:
            raise InjectedRankFailure(f"injected failure on rank {rank} at iteration {self.iteration}")
        return original(self)

    Trainer.run_step = run_step  # type: ignore[method-assign]


def check_seg_loss() -> int:
    """Rank r holds image r of a 2-image batch whose images ignore 3 and 40 pixels; the DDP-style average of the
    per-rank gradients of a shared weight must equal its gradient from the 2-image loss in one process."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    from seg_uda.methods.losses import seg_loss

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(world, 3, 4, 6, generator=g)
    weight = torch.randn(5, 3, 1, 1, generator=g)  # the shared "model": a 1x1 conv to 5 classes
    labels = torch.randint(0, 5, (world, 8, 12), generator=g)
    labels.view(world, -1)[0, :3] = 255
    labels.view(world, -1)[1, :40] = 255
    mine = weight.clone().requires_grad_(True)
    loss = seg_loss(F.conv2d(feats[rank:rank + 1], mine), labels[rank:rank + 1])
    loss.backward()
    grad = mine.grad.clone()
    dist.all_reduce(grad)  # DDP averages gradients over ranks
    grad /= world
    value = loss.detach().clone()
    dist.all_reduce(value)
    full = weight.clone().requires_grad_(True)  # one process, whole batch: plain mean over valid pixels
    logits = F.interpolate(F.conv2d(feats, full), size=(8, 12), mode="bilinear", align_corners=True)
    ref = F.cross_entropy(logits, labels, ignore_index=255)
    ref.backward()
    grad_err = float((grad - full.grad).abs().max() / full.grad.abs().max())
    value_err = abs(float(value) / world - float(ref)) / float(ref)
    ok = grad_err < 1e-5 and value_err < 1e-5  # float32 arithmetic; a per-rank count is far off here
    print(f"rank {rank}: seg_loss over ranks {'matches' if ok else 'DIFFERS FROM'} the single-process batch "
          f"(relative errors: gradient {grad_err:.1e}, value {value_err:.1e})", flush=True)
    dist.destroy_process_group()
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    import torch

    torch.set_num_threads(1)
    if argv[:1] == ["--check-seg-loss"]:
        return check_seg_loss()
    fail_rank, fail_at = None, 0
    while argv and argv[0] in ("--fail-rank", "--fail-at"):
        flag, value, argv = argv[0], int(argv[1]), argv[2:]
        if flag == "--fail-rank":
            fail_rank = value
        else:
            fail_at = value
    if fail_rank is not None:
        _inject_failure(fail_rank, fail_at)
    from seg_uda.cli import train  # seg-uda-train / tools/train.py

    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
